"""Ansible tasks for one planned step or check: the command per platform and host, confirmations, manual steps.

Every command is the plan's rendered script, run as the engine runs it (`<shell> -ec <script>` through the
`command` module's `argv`, so no second shell and the plan's quoting are kept). Text from the plan is
protected from Ansible's own templating (`{% raw %}`), and a secret is never in it: the script reads
`$RUNBOOK_SECRET_<NAME>`, which the task fills from the controller's `RUNBOOK_VAR_<NAME>` at run time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.export.yamltext import Item
from engine.model import Expect, Retries
from engine.planning import HostPlan, Variant
from engine.rendering import SecretRef
from engine.targets import Host
from engine.transports import Transport

RESULT = "runbook_result"
ANSWER = "runbook_answer"
YES = "runbook_yes | default(false) | bool"
CONFIRM_MANUAL = "runbook_confirm_manual | default(false) | bool"
ANSIBLE_SYSTEMS = {"linux": "Linux", "darwin": "Darwin", "windows": "Win32NT"}


def facts(where: str) -> Item:
    """`ansible_system` of the hosts `where` selects, learnt once: a `run:` variant is chosen by it."""
    return Item(
        {
            "name": "Learn the system of each host (the platform a run variant is chosen by)",
            "ansible.builtin.setup": {
                "gather_subset": ["!all", "!min", "platform"],
                "filter": ["ansible_system"],
            },
            "when": [where, "ansible_system is not defined"],
        }
    )


def capital(text: str) -> str:
    """A task name starts with a capital (ansible-lint's name[casing])."""
    return text[:1].upper() + text[1:]


def literal(text: str) -> str:
    """Text Ansible must pass on as written: `{{ }}`, `{% %}` and `{# #}` in it are not templates."""
    if not any(mark in text for mark in ("{{", "{%", "{#")):
        return text
    return (
        "{% raw %}"
        + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}")
        + "{% endraw %}"
    )


def expression_string(text: str) -> str:
    """A jinja string literal for `text`, inside an expression (`when`, `that`, `failed_when`)."""
    return json.dumps(text, ensure_ascii=False)


def secret_lookup(env: str) -> str:
    """`RUNBOOK_SECRET_TOKEN` → the controller's `RUNBOOK_VAR_TOKEN`, read when the task runs."""
    name = env.removeprefix("RUNBOOK_SECRET_")
    return f"{{{{ lookup('ansible.builtin.env', 'RUNBOOK_VAR_{name}') }}}}"


def secret_env_names(secrets: frozenset[str]) -> dict[str, str]:
    """`RUNBOOK_SECRET_<NAME>` → the variable `<name>`, for every secret of the runbook."""
    return {SecretRef(name).env: name for name in secrets}


@dataclass(frozen=True)
class CommandSpec:
    """What every host of a step (or check) shares: how the command runs and what counts as success."""

    name: str
    shell: str
    timeout: float | None
    retries: Retries = field(default_factory=Retries)
    expect: Expect = field(default_factory=Expect)
    changes: bool = True
    ignore_errors: bool = False
    throttle: int | None = None
    where: str = "true"  # which hosts of the play the target is: `inventory_hostname in groups['nodes']`
    once: bool = False  # `run_once`: the first host not left out
    until: str | None = None  # the step's `until`, a bare expression over `result`
    when: str | None = None  # a `when` decided on the host (it reads the host's platform)
    values: tuple[tuple[str, Any], ...] = ()  # what that `when` reads, as task vars


def command_tasks(spec: CommandSpec, hosts: Sequence[HostPlan], aliases: Mapping[Host, str]) -> list[Item]:
    """The tasks running `hosts`' commands: one group per distinct rendering, one task per platform variant."""
    groups: dict[tuple[Any, ...], list[HostPlan]] = {}
    for plan in hosts:
        if plan.skip is None:
            groups.setdefault((plan.variants, plan.cwd, plan.env, plan.secret_env), []).append(plan)
    tasks = []
    once = [aliases[h.host] for h in hosts if h.skip is None] if spec.once else None
    for members in groups.values():
        only = None if len(members) == len(hosts) else [aliases[m.host] for m in members]
        tasks += _variant_tasks(spec, members[0], only or spec.where, once)
    skipped = [(aliases[h.host], h.skip) for h in hosts if h.skip is not None]
    if skipped:
        reasons = sorted({reason for _, reason in skipped if reason})
        tasks.append(
            Item(
                {
                    "name": f"{spec.name}: skipped on {', '.join(n for n, _ in skipped)}",
                    "ansible.builtin.debug": {"msg": literal("; ".join(reasons))},
                    "when": spec.where,
                },
                ("when: evaluated when the playbook was exported, as the plan did",),
            )
        )
    return tasks


def _variant_tasks(
    spec: CommandSpec, plan: HostPlan, only: list[str] | str, once: list[str] | None
) -> list[Item]:
    variants = plan.variants
    per_platform = len(variants) > 1 or variants[0].platform not in ("*",)
    tasks = []
    for variant in variants:
        when = [_once_condition(once)] if once is not None else []
        when += [_platform_condition(variant, variants)] if per_platform else []
        tasks.append(_command(spec, plan, variant, when, only))
    if per_platform and not any(v.platform == "default" for v in variants):
        listed = [ANSIBLE_SYSTEMS.get(v.platform, v.platform) for v in variants]
        tasks.append(
            Item(
                {
                    "name": f"{spec.name}: no command for this platform",
                    "ansible.builtin.fail": {
                        "msg": f"no command for platform {{{{ ansible_system }}}}: the runbook has {listed}"
                    },
                    "when": [*_hosts_condition(only), f"ansible_system not in {listed}"],
                }
            )
        )
    return tasks


def _once_condition(candidates: list[str]) -> str:
    """`run_once`: the first of `candidates` still in the play (a failed or ended host is left out); `select`
    keeps their order, which `intersect` does not (measured with ansible-core 2.19)."""
    return f"inventory_hostname == ({candidates} | select('in', ansible_play_hosts) | first | default(''))"


def _platform_condition(variant: Variant, variants: Sequence[Variant]) -> str:
    if variant.platform == "default":
        listed = [ANSIBLE_SYSTEMS[v.platform] for v in variants if v.platform in ANSIBLE_SYSTEMS]
        return f"ansible_system not in {listed}"
    return f"ansible_system == {expression_string(ANSIBLE_SYSTEMS.get(variant.platform, variant.platform))}"


def _hosts_condition(only: list[str] | str) -> list[str]:
    return [only] if isinstance(only, str) else [f"inventory_hostname in {only}"]


PLATFORM = "{{ {'Linux': 'linux', 'Darwin': 'darwin', 'Win32NT': 'windows'}[ansible_system] | default('') }}"


def value(data: Any) -> Any:
    """A runbook value as an Ansible var: its text kept from Ansible's templating, lists and mappings too."""
    if isinstance(data, str):
        return literal(data)
    if isinstance(data, list):
        return [value(item) for item in data]
    if isinstance(data, dict):
        return {key: value(item) for key, item in data.items()}
    return data


def needs_facts(hosts: Sequence[HostPlan]) -> bool:
    return any(len(h.variants) > 1 or (h.variants and h.variants[0].platform != "*") for h in hosts)


def _command(
    spec: CommandSpec, plan: HostPlan, variant: Variant, when: list[str], only: list[str] | str
) -> Item:
    label = f" ({variant.label})" if variant.label else ""
    command: dict[str, Any] = {"argv": [spec.shell, "-ec", literal(variant.script)]}
    if plan.cwd:
        command["chdir"] = literal(plan.cwd)
    task: dict[str, Any] = {"name": spec.name + label, "ansible.builtin.command": command}
    environment = {name: literal(value) for name, value in plan.env}
    if (
        plan.host.transport is Transport.LOCAL and plan.host.name != "local"
    ):  # `--target NAME=local`: the engine names the host
        environment["RUNBOOK_HOST"] = "{{ runbook_host }}"
    secrets = {env: secret_lookup(env) for env in variant.secret_env}
    secrets.update({name: secret_lookup(env) for name, env in plan.secret_env})
    environment.update(secrets)
    if environment:
        task["environment"] = environment
    task.update(_judging(spec))
    if secrets:
        task["no_log"] = True
    conditions = _hosts_condition(only) + when + ([spec.when] if spec.when else [])
    task["when"] = conditions if len(conditions) > 1 else conditions[0]
    return Item(task)


def _judging(spec: CommandSpec) -> dict[str, Any]:
    """register, changed_when, failed_when (`expect`), until/retries/delay, timeout, throttle, ignore_errors."""
    task: dict[str, Any] = {"register": RESULT, "changed_when": spec.changes}
    failed = _failed_when(spec.expect)
    if failed:
        task["failed_when"] = failed
    if spec.retries.count or spec.until:
        delay = spec.retries.delay
        task["until"] = f"{RESULT} is not failed" + (f" and ({spec.until})" if spec.until else "")
        task["retries"] = spec.retries.count
        task["delay"] = int(delay) if delay == int(delay) else math.ceil(delay)
    if spec.values:
        task["vars"] = dict(spec.values)
    if spec.until:  # the runbook's `result`, as the engine gives it to `until`
        task["vars"] = {
            **task.get("vars", {}),
            "result": {
                "stdout": f"{{{{ {RESULT}.stdout | default('') }}}}",
                "stderr": f"{{{{ {RESULT}.stderr | default('') }}}}",
                "exit_code": f"{{{{ {RESULT}.rc | default(None) }}}}",
            },
        }
    if spec.timeout:
        task["timeout"] = math.ceil(spec.timeout)
    if spec.throttle:
        task["throttle"] = spec.throttle
    if spec.ignore_errors:
        task["ignore_errors"] = True
    return task


def _failed_when(expect: Expect) -> str | None:
    """One condition (a list would mean *and*): any unmet expectation fails the host."""
    if expect == Expect():
        return None
    found = [f"{RESULT}.rc not in {list(expect.exit_codes)}"]
    if expect.stdout_contains is not None:
        found.append(f"{expression_string(expect.stdout_contains)} not in {RESULT}.stdout")
    if expect.stdout_matches is not None:
        pattern = expression_string(expect.stdout_matches)
        found.append(f"{RESULT}.stdout is not search({pattern}, multiline=True)")
    return " or ".join(found)
