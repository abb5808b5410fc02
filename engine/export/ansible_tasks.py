"""Ansible tasks for one planned step or check: the command per platform and host, confirmations, manual steps.

Every command is the plan's rendered script, run as the engine runs it, by `<shell> -ec`: the task's argv is
only `<shell> -ec 'eval "$(cat)"'`, and the script comes through the `command` module's stdin, preceded by
`export NAME='value'` lines for the step's `env:` and secrets. So no value is ever in a process's argv (on
the controller or the node), none is expanded into the script (the module's `$NAME` expansion of argv, a
value's `$(…)`), and Ansible's `environment:` (which writes values on the module's `sh -c` line) is not
used. Secrets are read from the controller's `RUNBOOK_VAR_<NAME>` when the task runs, shell-quoted, and the
task is `no_log`. Every text from the plan is Ansible data (`yamltext.data`, `!unsafe`); expressions read
values only through task vars, by names the engine chose.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.export.yamltext import Item, data
from engine.model import Expect, Retries
from engine.planning import HostPlan, Variant
from engine.targets import Host
from engine.transports import Transport
from engine.variables import ENV_PREFIX

RESULT = "runbook_result"
SCRIPT = "runbook_script"  # task var: the step's env as `export` lines, then its script (data)
RUNS_SCRIPT = 'eval "$(cat)"'  # the shell reads all of stdin, then runs it: the script's stdin is empty
EXPECTED = "runbook_expected"  # task var: a text an expression compares with (data)
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


def controller_env(env: str) -> str:
    """`RUNBOOK_SECRET_TOKEN` (what a script reads) → `RUNBOOK_VAR_TOKEN` (where the controller has it)."""
    return f"{ENV_PREFIX}{env.removeprefix('RUNBOOK_SECRET_')}"


def shell_name(name: str) -> str:
    """A name the engine writes into shell or Jinja code itself: the schema allows only identifiers there."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not an identifier: {name!r}")
    return name


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
                    "ansible.builtin.debug": {"msg": data("; ".join(reasons))},
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
    return f"ansible_system == {ANSIBLE_SYSTEMS[variant.platform]!r}"  # the schema's platform names only


def _hosts_condition(only: list[str] | str) -> list[str]:
    return [only] if isinstance(only, str) else [f"inventory_hostname in {only}"]


PLATFORM = "{{ {'Linux': 'linux', 'Darwin': 'darwin', 'Win32NT': 'windows'}[ansible_system] | default('') }}"


def needs_facts(hosts: Sequence[HostPlan]) -> bool:
    return any(len(h.variants) > 1 or (h.variants and h.variants[0].platform != "*") for h in hosts)


def script_command(
    shell: str,
    script: str,
    env: Sequence[tuple[str, str]] = (),
    secrets: Mapping[str, str] = {},
    cwd: str | None = None,
) -> dict[str, Any]:
    """The task fields running `script` by `shell -ec` with `env` and `secrets` (name → the controller's
    environment variable holding it, `RUNBOOK_VAR_<NAME>`): the module and its task vars."""
    exports = "".join(f"export {shell_name(name)}={shlex.quote(text)}\n" for name, text in env)
    stdin = "".join(
        f"export {shell_name(name)}={{{{ lookup('ansible.builtin.env', '{shell_name(source)}') | quote }}}}\n"
        for name, source in secrets.items()
    )
    command: dict[str, Any] = {
        "argv": data([shell, "-ec", RUNS_SCRIPT]),
        "stdin": stdin + f"{{{{ {SCRIPT} }}}}",
        "expand_argument_vars": False,
    }
    if cwd:
        command["chdir"] = data(cwd)
    return {"ansible.builtin.command": command, "vars": {SCRIPT: data(exports + script)}}


def _command(
    spec: CommandSpec, plan: HostPlan, variant: Variant, when: list[str], only: list[str] | str
) -> Item:
    label = f" ({variant.label})" if variant.label else ""
    secrets = {env: controller_env(env) for env in variant.secret_env}
    secrets.update({name: controller_env(env) for name, env in plan.secret_env})
    script = script_command(spec.shell, variant.script, plan.env, secrets, plan.cwd)
    if plan.host.transport is Transport.LOCAL and plan.host.name != "local":  # `--target NAME=local`
        command = script["ansible.builtin.command"]
        command["stdin"] = "export RUNBOOK_HOST={{ runbook_host | quote }}\n" + command["stdin"]
    task: dict[str, Any] = {"name": spec.name + label, **script}
    judging = _judging(spec)
    task.update({**judging, "vars": {**script["vars"], **judging.get("vars", {})}})
    if secrets:
        task["no_log"] = True
    conditions = _hosts_condition(only) + when + ([spec.when] if spec.when else [])
    task["when"] = conditions if len(conditions) > 1 else conditions[0]
    return Item(task)


def _judging(spec: CommandSpec) -> dict[str, Any]:
    """register, changed_when, failed_when (`expect`), until/retries/delay, timeout, throttle, ignore_errors."""
    task: dict[str, Any] = {"register": RESULT, "changed_when": spec.changes}
    failed, expected = _failed_when(spec.expect)
    if failed:
        task["failed_when"] = failed
    if spec.retries.count or spec.until:
        delay = spec.retries.delay
        task["until"] = f"{RESULT} is not failed" + (f" and ({spec.until})" if spec.until else "")
        task["retries"] = spec.retries.count
        task["delay"] = int(delay) if delay == int(delay) else math.ceil(delay)
    if spec.values or expected:
        task["vars"] = {**expected, **dict(spec.values)}
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


def _failed_when(expect: Expect) -> tuple[str | None, dict[str, Any]]:
    """One condition (a list would mean *and*): any unmet expectation fails the host; the texts it compares
    with, as task vars (data)."""
    if expect == Expect():
        return None, {}
    found = [f"{RESULT}.rc not in {list(expect.exit_codes)}"]
    texts = {}
    if expect.stdout_contains is not None:
        texts[f"{EXPECTED}_stdout"] = data(expect.stdout_contains)
        found.append(f"{EXPECTED}_stdout not in {RESULT}.stdout")
    if expect.stdout_matches is not None:
        texts[f"{EXPECTED}_pattern"] = data(expect.stdout_matches)
        found.append(f"{RESULT}.stdout is not search({EXPECTED}_pattern, multiline=True)")
    return " or ".join(found), texts
