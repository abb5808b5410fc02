"""Targets → concrete hosts: inline host lists, YAML inventories (the RKE cluster file), and overrides.

Resolution happens at plan time, so a plan, a checklist and a run all see the same host list. Nothing
here connects anywhere; SSH config (`~/.ssh/config`) is applied by the SSH executor, like OpenSSH does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine import loading
from engine.errors import InvalidRunbook, UsageError
from engine.executors.base import Transport
from engine.model import LOCAL, Inventory, Runbook, Target, Template
from engine.rendering import OMIT, render, template_problem

_HOST_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<name>[^@:\s]+)(?::(?P<port>[0-9]+))?$")


@dataclass(frozen=True)
class Host:
    """One place a step runs. `name` is what the operator wrote and sees; `address` is what we connect to."""

    name: str
    address: str
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    transport: Transport = Transport.SSH

    @property
    def display(self) -> str:
        """`user@name:port` with the parts that are set, as an operator would type it to ssh."""
        remote = self.transport is not Transport.LOCAL
        user = f"{self.user}@" if self.user and remote else ""
        port = f":{self.port}" if self.port and remote else ""
        return f"{user}{self.name}{port}"

    def context(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "user": self.user, "port": self.port}


LOCAL_HOST = Host(LOCAL, "localhost", transport=Transport.LOCAL)


@dataclass(frozen=True)
class ResolvedTarget:
    name: str
    hosts: tuple[Host, ...]
    local: bool
    concurrency: int


def parse_host(spec: str) -> Host:
    """`user@name:port` (user and port optional), as in the runbook's `hosts:` and `--hosts`."""
    match = _HOST_SPEC.match(spec.strip())
    if not match:
        raise UsageError(f"{spec!r} is not a host: expected name, user@name or user@name:port")
    port = match["port"]
    return Host(match["name"], match["name"], match["user"], int(port) if port else None)


def parse_overrides(items: list[str], flag: str) -> dict[str, str]:
    """`["nodes=a,b"]` → `{"nodes": "a,b"}` for --hosts and --target."""
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{flag} {item!r}: expected TARGET=VALUE")
        result[name] = value
    return result


def resolve(
    runbook: Runbook,
    context: Mapping[str, Any],
    hosts: Mapping[str, str] | None = None,
    run_locally: Mapping[str, str] | None = None,
) -> dict[str, ResolvedTarget]:
    """Every target's hosts, after `--hosts TARGET=a,b` and `--target TARGET=local` overrides."""
    hosts, run_locally = hosts or {}, run_locally or {}
    names = {t.name for t in runbook.targets}
    for flag, table in (("--hosts", hosts), ("--target", run_locally)):
        for name in table:
            if name not in names:
                raise UsageError(
                    f"{flag} {name}=…: unknown target {name!r}; targets: {', '.join(sorted(names))}"
                )
    for name, where in run_locally.items():
        if where != LOCAL:
            raise UsageError(f"--target {name}={where}: only 'local' is supported")
    return {
        t.name: _resolve_one(runbook, t, context, hosts.get(t.name), t.name in run_locally)
        for t in runbook.targets
    }


def _resolve_one(
    runbook: Runbook, target: Target, context: Mapping[str, Any], override: str | None, locally: bool
) -> ResolvedTarget:
    concurrency = target.concurrency or runbook.default_concurrency
    if target.local:
        return ResolvedTarget(target.name, (LOCAL_HOST,), True, 1)
    if override is not None:
        found = tuple(parse_host(spec) for spec in override.split(",") if spec.strip())
    elif target.inventory is not None:
        found = _inventory(target.inventory, context)
    else:
        found = tuple(parse_host(spec) for spec in target.hosts)
    if locally:
        found = tuple(replace(h, transport=Transport.LOCAL) for h in found)
    return ResolvedTarget(target.name, found, locally, concurrency)


def _inventory(inventory: Inventory, context: Mapping[str, Any]) -> tuple[Host, ...]:
    path = Path(render(inventory.from_file, context)).expanduser()
    try:
        document = loading.load(path)
    except InvalidRunbook as error:
        if error.problems and error.problems[0].line == 0:
            raise InvalidRunbook(
                [
                    template_problem(
                        inventory.from_file,
                        f"cannot read the inventory {str(path)!r}: {error.problems[0].message}",
                    )
                ]
            ) from None
        raise
    items: Any = document.data
    for key in inventory.each.split("."):
        items = items.get(key) if isinstance(items, dict) else None
    if not isinstance(items, list) or not items:
        message = f"{str(path)!r} has no list at {inventory.each!r}"
        raise InvalidRunbook([template_problem(inventory.from_file, message)])
    return tuple(
        _located_host(inventory, {**context, "item": item}, path, index) for index, item in enumerate(items)
    )


def _located_host(inventory: Inventory, context: Mapping[str, Any], path: Path, index: int) -> Host:
    """One inventory entry; a template error names the entry, since every entry renders the same template."""
    try:
        return _inventory_host(inventory, context, path, index)
    except InvalidRunbook as error:
        prefix = f"{path}: entry {index} of {inventory.each!r}: "
        located = [
            p if p.message.startswith(str(path)) else replace(p, message=prefix + p.message)
            for p in error.problems
        ]
        raise InvalidRunbook(located) from None


def _inventory_host(inventory: Inventory, context: Mapping[str, Any], path: Path, index: int) -> Host:
    def field(template: Template | None) -> str | None:
        value = render(template, context).strip() if template is not None else ""
        return None if value in ("", OMIT, "None") else value

    address = field(inventory.host)
    if address is None:
        raise InvalidRunbook(
            [template_problem(inventory.host, f"{path}: entry {index} of {inventory.each!r} has no host")]
        )
    port = field(inventory.port)
    if port is not None and not port.isdigit() and inventory.port is not None:
        raise InvalidRunbook(
            [template_problem(inventory.port, f"{path}: entry {index}: port {port!r} is not a number")]
        )
    key = field(inventory.key_file)
    return Host(
        address,
        address,
        field(inventory.user),
        int(port) if port else None,
        str(Path(key).expanduser()) if key else None,
    )
