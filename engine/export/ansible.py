"""`runbook export ansible`: the plan as an Ansible playbook and inventory, and what does not carry over.

Built from the same `Plan` the dry run prints and the runner executes, never from the YAML: the commands in
the playbook are the plan's, rendered now with the values given now. Two plays on every host — what runs
before anything (secrets, warnings, checks, programs), then the steps — each with `any_errors_fatal`, and
each task on its target's hosts only. One play per step would not do: a failure ends only the play it is
in, and the plays after it would go on for the other hosts (measured with ansible-core 2.19).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.export import ansible_prompts as prompts
from engine.export.ansible_inventory import ON_LOCALHOST, Inventory
from engine.export.ansible_inventory import build as build_inventory
from engine.export.ansible_steps import step_tasks, tolerated_failures_fail_the_run
from engine.export.ansible_tasks import (
    CommandSpec,
    capital,
    command_tasks,
    facts,
    needs_facts,
    script_command,
)
from engine.export.unmapped import Unmapped
from engine.export.yamltext import Item, comment_lines, document, dump
from engine.planning import HostPlan, Plan, PlannedCheck
from engine.variables import ENV_PREFIX

NOT_CARRIED_OVER = (
    (
        "the journal (crash-safe, one record per step and host), resume of a stopped run and of steps whose "
        "outcome is unknown, `runbook runs`",
        "Ansible's own output (or the AWX job log); re-run a stopped playbook with --start-at-task",
    ),
    (
        "the values of the variables",
        "rendered into the commands when this file was exported: export again to change them",
    ),
    (
        "masking of secrets in a command's output",
        "a task that uses a secret has no_log: true, so none of its output is shown",
    ),
    (
        "every check reported at once, host reachability checked before anything runs",
        "the checks play stops at the first failing check, before any step runs",
    ),
    (
        "typed confirmation and manual answers kept in the journal with the operator's login name",
        "pause + assert: the answer is checked, not recorded",
    ),
    (
        "`timeout` kills the command on the host",
        "the task's timeout fails it; the remote command may go on until the SSH session closes",
    ),
    (
        "`concurrency` above the number of Ansible forks (default 5)",
        "throttle is capped by forks: pass -f N for more hosts at once",
    ),
    (
        "the printable checklist and `plan --save` reviews",
        "`runbook checklist` and `runbook plan` of the runbook",
    ),
)


@dataclass(frozen=True)
class Export:
    playbook: str
    inventory: str


def export(plan: Plan, lossy: Sequence[Unmapped] = ()) -> Export:
    """The playbook and inventory texts; `lossy` places are written as comments where they stand."""
    inventory = build_inventory(plan)
    notes: dict[str | None, list[str]] = {}
    for place in lossy:
        notes.setdefault(place.step, []).append(place.comment)
    plays = _plays(plan, inventory, notes)
    header = _header(plan, lossy)
    inventory_header = [
        f"Inventory of runbook {plan.runbook.name} {plan.runbook.version}, exported by `runbook export ansible`:",
        "every target's hosts as resolved at export time (inventory files read then, --hosts applied).",
    ]
    return Export(
        document(header, plays),
        "\n".join(["---", *comment_lines(inventory_header)]) + "\n" + dump(inventory.data),
    )


def _plays(plan: Plan, inventory: Inventory, notes: Mapping[str | None, list[str]]) -> list[Item]:
    """Two plays on every host: the checks, then the steps. Both stop everything at the first failure."""
    first = _start_tasks(plan)
    for index, check in enumerate(plan.checks):
        first += _check_tasks(check, index, inventory)
    first += _programs_tasks(plan, inventory)
    steps: list[Item] = []
    for planned in plan.steps:
        steps += step_tasks(plan, planned, inventory, notes.get(planned.id, []))
    if any(s.step.max_failed_hosts and not s.step.continue_on_error for s in plan.steps):
        steps.append(tolerated_failures_fail_the_run())
    plays = (
        [_play(f"Before anything runs: {plan.runbook.title}", first, notes.get(None, []))] if first else []
    )
    return [*plays, _play(plan.runbook.title, steps)]


def _play(name: str, tasks: list[Item], comments: Iterable[str] = ()) -> Item:
    data: dict[str, Any] = {
        "name": name,
        "hosts": "all",
        "gather_facts": False,
        "any_errors_fatal": True,
    }
    return Item(data, tuple(comments), (("tasks", tasks),))


def _start_tasks(plan: Plan) -> list[Item]:
    tasks = []
    secrets = sorted(v.name for v in plan.runbook.variables if v.secret)
    for name in secrets:
        env = f"{ENV_PREFIX}{name.upper()}"
        tasks.append(
            Item(
                {
                    "name": f"The secret {name} is given in the environment ({env})",
                    "ansible.builtin.assert": {
                        "that": f"lookup('ansible.builtin.env', '{env}') | length > 0",
                        "fail_msg": f"set {env} in the environment of ansible-playbook; nothing ran",
                    },
                    "no_log": True,
                    "when": ON_LOCALHOST,
                }
            )
        )
    if plan.warnings:  # the runbook's and each used runbook's
        tasks += prompts.warnings(plan.warnings)
    return tasks


def _check_tasks(check: PlannedCheck, index: int, inventory: Inventory) -> list[Item]:
    where = inventory.condition(check.target)
    spec = CommandSpec(f"Check: {capital(check.title)}", "sh", check.timeout, changes=False, where=where)
    tasks = _with_facts(check.hosts, where, command_tasks(spec, check.hosts, inventory.aliases))
    return [replace(tasks[0], comments=(f"checks[{index}]",)), *tasks[1:]]


def _programs_tasks(plan: Plan, inventory: Inventory) -> list[Item]:
    """The engine's preflight finds every program a step starts on each of its hosts: so does the playbook."""
    wanted: dict[str, list[str]] = {}
    for planned in plan.steps:
        names = wanted.setdefault(planned.target, [])
        names += [p for p in planned.programs if p not in names and planned.hosts]
    tasks = []
    for target, names in wanted.items():
        if not names:
            continue
        script = (
            f"for p in {shlex.join(names)}; do\n"
            '  command -v "$p" >/dev/null 2>&1 || { echo "program not found: $p"; missing=1; }\n'
            'done\n[ -z "${missing:-}" ]\n'
        )
        task = {
            "name": f"Check: the programs the steps start on {target} are there",
            **script_command("sh", script),
            "changed_when": False,
            "when": inventory.condition(target),
        }
        tasks.append(Item(task))
    return tasks


def _with_facts(hosts: Sequence[HostPlan], where: str, tasks: list[Item]) -> list[Item]:
    return [facts(where), *tasks] if needs_facts(hosts) else tasks


def _header(plan: Plan, lossy: Sequence[Unmapped]) -> list[str]:
    rb = plan.runbook
    lines = [
        f"{rb.title}",
        f"Runbook {rb.name} {rb.version} ({rb.document.path}, sha256 {rb.document.sha256}),",
        "exported by `runbook export ansible`. Run it with:",
        "  ansible-playbook -i inventory.yml playbook.yml",
        "Without a terminal, -e runbook_yes=true answers the warnings and confirmations (like --yes) and",
        "-e runbook_confirm_manual=true answers manual steps with their expected answer (like --confirm-manual).",
    ]
    secrets = sorted(v.name for v in rb.variables if v.secret)
    if secrets:
        names = ", ".join(f"{ENV_PREFIX}{n.upper()}" for n in secrets)
        lines.append(f"Secrets are read from the environment of ansible-playbook at run time: {names}.")
    shown = plan.values.masked()
    if shown:
        lines += ["", "Values rendered into this playbook:"]
        lines += [f"  {name} = {shown_value}" for name, shown_value in shown.items()]
    lines += ["", "What does not carry over, and what this playbook does instead:"]
    lines += [f"- {what}: {instead}" for what, instead in NOT_CARRIED_OVER]
    if lossy:
        lines += ["", "Not expressed (exported with --lossy; a comment stands at each place):"]
        lines += [f"- {place.problem}" for place in lossy]
    return lines
