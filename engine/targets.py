"""Targets → concrete hosts: inline host lists, YAML inventories, and the command-line overrides.

Resolution happens at plan time, so a plan, a checklist and a run all see the same host list. Nothing
here connects anywhere; SSH config (`~/.ssh/config`) is applied by the SSH executor, like OpenSSH does.
How each host is reached (key, agent, certificate, jump hosts) is rendered by `reach`; inventories are
read by `inventory`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine import inventory, reach, rendering
from engine.errors import InvalidRunbook, UsageError
from engine.model import LOCAL, Runbook, Target
from engine.rendering import render, template_problem
from engine.transports import (
    DESTINATION_FORMS,
    Reach,
    SSHTarget,
    Transport,
    describe_auth,
    parse_destination,
)


@dataclass(frozen=True, kw_only=True)
class Host(Reach):
    """One place a step runs, and how it is reached (`Reach`'s settings). `name` is what the operator wrote
    and sees; `address` is what we connect to; `vars` is the host's inventory entry, which step templates
    see as `host.vars`."""

    name: str = field(kw_only=False)
    address: str = field(kw_only=False)
    transport: Transport = Transport.SSH
    jump: tuple[Host, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def ssh_target(self) -> SSHTarget:
        """The host as OpenSSH would see it; like `ssh NAME`, a name that is its own address leaves HostName
        to ~/.ssh/config."""
        address = self.address if self.address != self.name else None
        jump = tuple(hop.ssh_target() for hop in self.jump)
        return SSHTarget(self.name, address, **self.settings(), jump=jump)

    @property
    def display(self) -> str:
        """`user@name:port` with the parts that are set, as an operator would type it to ssh."""
        remote = self.transport is not Transport.LOCAL
        user = f"{self.user}@" if self.user and remote else ""
        port = f":{self.port}" if self.port and remote else ""
        return f"{user}{self.name}{port}"

    @property
    def reach(self) -> str:
        """How the host is reached, in words, for `plan`: never the inline key or certificate themselves."""
        if self.transport is Transport.LOCAL:
            return "this machine"
        via = (
            f", via {' → '.join(f'{h.address_text} ({h.auth_text})' for h in self.jump)}" if self.jump else ""
        )
        return f"ssh {self.address_text}, {self.auth_text}{via}"

    @property
    def address_text(self) -> str:
        """`user@address:port`; what the runbook leaves unset comes from ~/.ssh/config (else ssh's defaults)."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        unset = [word for word, value in (("user", self.user), ("port", self.port)) if value is None]
        config = f" ({' and '.join(unset)} from ~/.ssh/config)" if unset else ""
        return f"{user}{self.address}{port}{config}"

    @property
    def auth_text(self) -> str:
        words = describe_auth(self)
        if self.cert is not None or self.cert_file is not None:
            words += ", certificate " + ("inline" if self.cert is not None else str(self.cert_file))
        return words

    def context(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "user": self.user,
            "port": self.port,
            "vars": self.vars,
        }


LOCAL_HOST = Host(LOCAL, "localhost", transport=Transport.LOCAL)


@dataclass(frozen=True)
class ResolvedTarget:
    name: str
    hosts: tuple[Host, ...]
    local: bool
    concurrency: int
    inventory: Any = field(default_factory=dict, compare=False, repr=False)  # the document its hosts are from
    may_be_unreachable: bool = False


def parse_host(spec: str) -> Host:
    """`user@name:port` (user and port optional), as in the runbook's `hosts:` and `--hosts`."""
    found = parse_destination(spec)
    if found is None:
        raise UsageError(f"{spec!r} is not a host: expected {DESTINATION_FORMS}")
    return Host(found.host, found.host, user=found.user, port=found.port)


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
    resolved = {
        t.name: _resolve_one(runbook, t, context, hosts.get(t.name), t.name in run_locally)
        for t in runbook.targets
    }
    _one_way_each(runbook, resolved)
    return resolved


def _one_way_each(runbook: Runbook, resolved: Mapping[str, ResolvedTarget]) -> None:
    """Refuse a host name that two entries reach differently (another user, port, key, agent use, jump).

    A run names hosts by name: one connection each, and the journal, the summary and a resume key every
    outcome by it. Two ways to reach one name would run every step through whichever connected first, the
    other's settings silently ignored: `deploy@web1` and `root@web1` would run as one of them."""
    first: dict[str, tuple[str, Host]] = {}
    problems, reported = [], set()
    for target in resolved.values():
        for host in target.hosts:
            if host.transport is Transport.LOCAL:
                continue
            where, seen = first.setdefault(host.name, (target.name, host))
            if seen.ssh_target() != host.ssh_target() and host.name not in reported:
                reported.add(host.name)  # once a name: its other entries would only repeat it
                other = "another entry of this target" if where == target.name else f"target {where!r}"
                problems.append(
                    runbook.document.positions.problem(
                        ("targets", target.name),
                        f"host {host.name!r} is reached two ways: here as {host.reach.removeprefix('ssh ')}; "
                        f"by {other} as {seen.reach.removeprefix('ssh ')}. A run knows each host by its name, "
                        "so one name must be one account reached one way: give one of them another name (a "
                        "Host alias in ~/.ssh/config)",
                        key=True,
                    )
                )
    if problems:
        raise InvalidRunbook(problems)


def _resolve_one(
    runbook: Runbook, target: Target, context: Mapping[str, Any], override: str | None, locally: bool
) -> ResolvedTarget:
    concurrency = target.concurrency or runbook.default_concurrency
    if target.local:
        return ResolvedTarget(target.name, (LOCAL_HOST,), True, 1)
    document: Any = {}
    if override is not None:
        # A host list's settings (key, agent, jump...) still apply; an inventory's speak of its entries, so
        # hosts given instead of its entries are reached as ~/.ssh/config says.
        given = [parse_host(spec) for spec in override.split(",") if spec.strip()]
        keep = target.inventory is None
        found = tuple(_host(target, context, host, None, {}) if keep else host for host in given)
    elif target.inventory is not None:
        document, found = inventory.entries(target.inventory, context, _entry_builder(target))
    else:
        found = tuple(_listed(target, context))
    if locally:
        found = tuple(replace(h, transport=Transport.LOCAL) for h in found)
    return ResolvedTarget(target.name, found, locally, concurrency, document, target.may_be_unreachable)


def _listed(target: Target, context: Mapping[str, Any]) -> list[Host]:
    """`hosts:` entries, each a template (`"{{ web_host }}"`) giving `name`, `user@name` or `user@name:port`."""
    hosts, reached = [], None
    for template in target.hosts:
        spec = render(template, context).strip()
        try:
            host = parse_host(spec)
        except UsageError as error:
            raise InvalidRunbook([template_problem(template, str(error))]) from None
        reached = reached or _reached(target, context, None)  # one context for all: rendered once
        hosts.append(_apply(host, reached, {}))
    return hosts


def _entry_builder(target: Target) -> Callable[[inventory.Entry], Host]:
    """A host per inventory entry. The SSH settings (~10 templates with the jump hosts') are rendered once
    for the whole inventory when none reads `item` or `inventory`, the only names that differ between
    entries: 250 entries then cost one rendering, not 250 (a render error is still the first entry's)."""
    per_entry = any(
        rendering.names_used(t.text) & {"item", "inventory"}
        for t in (*target.reach.templates(), *target.jump.templates())
    )
    once: list[_Reached] = []

    def build(entry: inventory.Entry) -> Host:
        if per_entry or not once:
            once[:] = [_reached(target, entry.context, entry.base)]
        return _apply(Host(entry.name or entry.address, entry.address), once[0], entry.item)

    return build


_Reached = tuple[dict[str, Any], tuple[Host, ...]]
"""A target's SSH settings and jump hosts, rendered for one context."""


def _reached(target: Target, context: Mapping[str, Any], base: str | None) -> _Reached:
    settings = reach.render_reach(target.reach, context, base).settings()
    jump = tuple(
        Host(hop.address, hop.address, **hop.reach.settings())
        for hop in reach.render_jump(target.jump, context, base)
    )
    return settings, jump


def _apply(found: Host, reached: _Reached, item: Mapping[str, Any]) -> Host:
    settings, jump = reached
    return replace(
        found,
        **{**settings, "user": found.user or settings["user"], "port": found.port or settings["port"]},
        jump=jump,
        vars=item,
    )


def _host(
    target: Target, context: Mapping[str, Any], found: Host, base: str | None, item: Mapping[str, Any]
) -> Host:
    """`found` (name, address and any user/port it was written with) plus the target's SSH settings."""
    return _apply(found, _reached(target, context, base), item)
