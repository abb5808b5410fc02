"""The tasks of one planned step: manual prompts, or confirmation, command, tolerated failures and result.

`max_failed_hosts` has no task keyword in Ansible (`max_fail_percentage` is per play): a block whose rescue
notes the failed host and ends it (`meta: end_host`, as the engine leaves it out of the steps after), an
assert that no more hosts failed than allowed, and one last assert that fails the run if any did.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.export import ansible_prompts as prompts
from engine.export import unmapped
from engine.export.ansible_inventory import ON_LOCALHOST, Inventory
from engine.export.ansible_tasks import (
    PLATFORM,
    CommandSpec,
    capital,
    command_tasks,
    facts,
    needs_facts,
)
from engine.export.yamltext import Item, data
from engine.planning import Plan, PlannedStep
from engine.rendering import names_used

_FAILED = "runbook_failed_in"
_STEP = "runbook_step"  # task var: the step's id, which the failed hosts are counted by (data)


def step_tasks(plan: Plan, planned: PlannedStep, inventory: Inventory, notes: list[str]) -> list[Item]:
    """A step's tasks, its number and `--lossy` notes as comments above the first: a manual step's prompts,
    or the confirmation, the command per platform and host group, and the result."""
    step = planned.step
    name = f"{capital(planned.title)} ({planned.id})"
    place = planned.place
    begins = (
        place is not None
        and planned.step is place.group.steps[0]
        and not (planned.item and planned.item.index)
    )
    shown = [f"group {place.group.id}: {place.label or 'its steps'}"] if place and begins else []
    comments = (*shown, f"step {planned.label}: {planned.id}", *notes)
    batch = planned.place.batch_hosts(planned.step) if planned.place else ()  # a rolling group's step
    where = inventory.condition(planned.target, batch)
    asks = planned.approval is not None and planned.approval.required != 0
    approval = prompts.approval(planned, name) if asks else []
    if planned.manual is not None:
        asked = approval + prompts.manual(planned, name)
        tasks = asked if planned.skip is None else [_skipped(name, planned.skip)]
    else:
        tasks = approval + (
            prompts.confirm(planned, name)
            if step.confirm and any(h.skip is None for h in planned.hosts)
            else []
        )
        spec = CommandSpec(
            name,
            step.shell,
            step.timeout,
            step.retries,
            step.expect,
            ignore_errors=step.continue_on_error,
            throttle=planned.concurrency if len(planned.hosts) > 1 else None,
            where=where,
            once=step.run_once,
            until=step.until.text if step.until else None,
        )
        if step.when is not None and unmapped.when_on_the_host(plan, planned):
            spec = replace(spec, when=step.when.text, values=_when_values(plan, planned, step.when.text))
        found = command_tasks(spec, planned.hosts, inventory.aliases)
        commands = [facts(where), *found] if spec.when or needs_facts(planned.hosts) else found
        if step.max_failed_hosts and not step.continue_on_error:
            commands = _tolerating(planned, name, where, commands)
        tasks += commands
        if planned.result:
            result = {"name": f"{name}: result", "ansible.builtin.debug": {"msg": data(planned.result)}}
            tasks.append(Item({**result, "when": where}))
    return [replace(tasks[0], comments=comments), *tasks[1:]]


def _skipped(name: str, reason: str) -> Item:
    """A manual step a false `when` skips: said, not asked."""
    said = {"name": f"{name}: skipped", "ansible.builtin.debug": {"msg": data(reason)}, "when": ON_LOCALHOST}
    return Item(said, ("when: evaluated when the playbook was exported, as the plan did",))


def _when_values(plan: Plan, planned: PlannedStep, when: str) -> tuple[tuple[str, Any], ...]:
    """What a `when` decided on the host reads: `platform` from the host's facts, the values as exported."""
    runbook, values = unmapped.source(plan, planned)
    found: list[tuple[str, Any]] = [("platform", PLATFORM)]
    for name in sorted(names_used("{{" + when + "}}") - {"platform"}):
        if name == "runbook":
            found.append((name, data({"name": runbook.name, "version": runbook.version})))
        else:
            found.append((name, data(values.values[name])))
    return tuple(found)


def _tolerating(planned: PlannedStep, name: str, where: str, tasks: list[Item]) -> list[Item]:
    """`max_failed_hosts`: a failed host is left out of the rest (end_host); more failures stop everything."""
    rescue = [
        Item(
            {"name": f"{name}: note the failed host", "ansible.builtin.set_fact": {_FAILED: data(planned.id)}}
        ),
        Item({"name": f"{name}: go on without the failed host", "ansible.builtin.meta": "end_host"}),
    ]
    # any_errors_fatal off for the block only: on, one failure would send every host to the rescue.
    block = Item(
        {
            "name": f"{name}: at most {planned.step.max_failed_hosts} host(s) may fail",
            "any_errors_fatal": False,
        },
        (),
        (("block", tasks), ("rescue", rescue)),
    )
    count = (
        f"ansible_play_hosts_all | map('extract', hostvars) | selectattr('{_FAILED}', 'defined') "
        f"| selectattr('{_FAILED}', 'equalto', {_STEP}) | list | length"
    )
    check = Item(
        {
            "name": f"{name}: no more than max_failed_hosts={planned.step.max_failed_hosts} failed",
            "ansible.builtin.assert": {
                "that": f"{count} <= {planned.step.max_failed_hosts}",
                "fail_msg": data(f"step {planned.id!r}: more hosts failed than max_failed_hosts allows"),
            },
            "vars": {_STEP: data(planned.id)},
            "when": ON_LOCALHOST,
        }
    )
    return [block, check]


def tolerated_failures_fail_the_run() -> Item:
    """A host left out after failing fails the run at its end, as in the engine (exit 1)."""
    failed = f"ansible_play_hosts_all | map('extract', hostvars) | selectattr('{_FAILED}', 'defined') | list"
    return Item(
        {
            "name": "The run fails if a host failed, even within max_failed_hosts",
            "ansible.builtin.assert": {
                "that": f"{failed} | length == 0",
                "fail_msg": "hosts failed within max_failed_hosts; the rest of the run went on without them",
            },
            "when": ON_LOCALHOST,
        }
    )
