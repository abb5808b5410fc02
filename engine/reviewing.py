"""Reviewed plans: `plan --save` writes the plan a reviewer approved, `run --plan` refuses any other.

The saved form is what the review covers: everything that decides what runs, where and how, rendered per
host (commands, cwd, env, platform variants), secrets masked. Every field of `model.Step` is either in it
(`STEP_REVIEW`, with the entries it contributes) or listed in `NOT_REVIEWED` with the reason it cannot
change a run; `tests/test_reviewing.py` fails on a field that is in neither, so a new field that changes
execution cannot silently escape review.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.planning import HostPlan, Plan, PlannedStep, sha256_text
from engine.transports import Transport

DIGEST_KEY = "sha256"

STEP_REVIEW: Mapping[str, Callable[[PlannedStep], dict[str, Any]]] = {
    "id": lambda p: {"id": p.id},  # a loop's item: the unit's id, `rotate[2]`
    "title": lambda p: {"title": p.step.title},
    "on": lambda p: {"target": p.target},
    "run": lambda p: {"hosts": [_host(h) for h in p.hosts]},  # rendered per host, with cwd and env
    "cwd": lambda p: {},  # in "hosts", rendered
    "env": lambda p: {},  # in "hosts", rendered (secrets by name only)
    "timeout": lambda p: {"timeout": p.step.timeout},
    "retries": lambda p: {"retries": [p.step.retries.count, p.step.retries.delay]},
    "shell": lambda p: {"shell": p.step.shell},
    "expect": lambda p: {
        "expect": [
            list(p.step.expect.exit_codes),
            p.step.expect.stdout_contains,
            p.step.expect.stdout_matches,
        ]
    },
    "continue_on_error": lambda p: {"continue_on_error": p.step.continue_on_error},
    "max_failed_hosts": lambda p: {"max_failed_hosts": p.step.max_failed_hosts},
    "concurrency": lambda p: {"concurrency": p.concurrency},
    "confirm": lambda p: {"confirm": p.confirm_question, "confirm_text": p.confirm_text},
    "approval": lambda p: {"approval": _approval(p)} if p.approval else {},  # no key: digests unchanged
    "manual": lambda p: {"manual": p.manual},
    "record": lambda p: {
        "record_expect": p.record_expect,
        "record_prompt": p.record_prompt,
        "record_matches": p.step.record.matches if p.step.record else None,
    },
    "result": lambda p: {"result": p.result},
    "when": lambda p: {"when": p.step.when.text if p.step.when else None},
    "run_once": lambda p: {"run_once": p.step.run_once},
    "until": lambda p: {"until": p.step.until.text if p.step.until else None},
    "deadline": lambda p: {"deadline": p.step.deadline},
    "loop": lambda p: {"item": p.item.value if p.item else None, "loop_var": p.item.var if p.item else None},
    "steps": lambda p: _group(p) if p.place else {},  # a group's step: its run, and what the group says
    "serial": lambda p: {},  # in "group": the batch's hosts, and in "hosts"
}
"""Each reviewed field of `model.Step`, and the entries of the saved step it becomes."""

NOT_REVIEWED: Mapping[str, str] = {
    "index": "the step's position: the saved steps are in order already",
    "description": "prose for the reader of the runbook; never executed or shown during a run",
    "requires": "programs preflight looks for before anything runs; it changes no command",
    "group_on": "how the group was written (on:); its batches are in each inner step's group and hosts",
    "use": "a use step is not in the plan itself: the used runbook's steps take its place (each reviewed, "
    "under the step's id), and the used file's sha256 is in the plan's 'uses'",
}
"""Fields of `model.Step` deliberately outside the review, each with the reason it cannot change a run."""


def _group(planned: PlannedStep) -> dict[str, Any]:
    assert planned.place is not None
    group = planned.place.group
    when = group.when.text if group.when else None
    return {"group": [planned.place.prefix, when, group.max_failed_hosts]}


def reviewable(plan: Plan) -> dict[str, Any]:
    """The reviewable form of a plan: what `plan --save` writes and `run --plan` compares."""
    rb = plan.runbook
    return {
        "runbook": {"name": rb.name, "version": rb.version, "title": rb.title, "sha256": rb.document.sha256},
        "uses": [{"step": u.step, "path": u.path, "sha256": u.sha256} for u in plan.uses],
        "platform": plan.platform,
        "values": plan.values.masked(),
        "checks": [
            {"title": c.title, "target": c.target, "hosts": [_host(h) for h in c.hosts]} for c in plan.checks
        ],
        "steps": [_step(s) for s in plan.steps],
        RESOLVES_KEY: resolution_of(plan),
    }


RESOLVES_KEY = "resolves"


def resolution_of(plan: Plan) -> dict[str, Any]:
    """Where each SSH host name of the plan resolves today (~/.ssh/config applied): address, port, user, the
    keys offered by fingerprint, the jump hosts. A plan without SSH hosts needs no SSH code for it."""
    hosts = plan.remote_hosts()
    if not hosts:
        return {}
    from engine.executors import resolution  # paramiko: only for a plan that reaches hosts over SSH

    return resolution.record(host.ssh_target() for host in hosts)


def check_resolution(plan: Plan, recorded: Any, source: str, when: str) -> None:
    """Refuse when a host name no longer resolves where `recorded` (a `resolution_of` taken earlier) says:
    for a resume, whose run header may keep the `resolution_of` its run started with. `source` names the
    record (`--resume RUN`), `when` the moment it was taken ("when the run started"). `run --plan` gets the
    same comparison through `check`."""
    what = _resolution_differences(plan, recorded, when)
    if what is not None:
        raise UsageError(f"{source}: {what}. Check ~/.ssh/config: a Host alias may point elsewhere now")


def _resolution_differences(plan: Plan, recorded: Any, when: str) -> str | None:
    if not isinstance(recorded, dict):
        return "where the hosts resolve was not recorded (by an older version)"
    from engine.executors import resolution

    moved = resolution.differences(recorded, resolution_of(plan))
    return f"hosts resolve elsewhere than {when}: {moved}" if moved else None


def digest(data: Mapping[str, Any]) -> str:
    """The sha256 of a reviewable form, independent of key order."""
    return sha256_text(json.dumps(data, sort_keys=True, ensure_ascii=False))


FORMAT = "runbook-plan"
FORMAT_VERSION = 1
"""Of the saved document (`plan --save`, `plan --format json`): bumped when a key changes meaning or goes
away. The format keys frame the reviewable form; the digest covers the reviewable form only."""


def document(plan: Plan) -> dict[str, Any]:
    """The saved form: format keys, the reviewable form, and its digest."""
    data = reviewable(plan)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **data, DIGEST_KEY: digest(data)}


def to_json(plan: Plan) -> str:
    return json.dumps(document(plan), indent=2, ensure_ascii=False) + "\n"


def save(plan: Plan, path: Path) -> str:
    """Write the plan's saved form; returns its digest."""
    path.write_text(to_json(plan), encoding="utf-8")
    return str(digest(reviewable(plan)))


def load(path: Path) -> dict[str, Any]:
    """A saved plan; a file that cannot be read or is not one is the operator's mistake (exit 2)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"--plan {path}: cannot read a saved plan: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--plan {path}: cannot read a saved plan: not a JSON object")
    return data


def differences(plan: Plan, reviewed: Mapping[str, Any]) -> str | None:
    """None when today's plan is the reviewed one; else what differs, for the operator."""
    today = reviewable(plan)
    if reviewed.get(DIGEST_KEY) == digest(today):
        return None
    if reviewed.get(RESOLVES_KEY) != today[RESOLVES_KEY]:
        moved = _resolution_differences(plan, reviewed.get(RESOLVES_KEY), "when reviewed")
        return moved or "where the hosts resolve differs"
    old = {s.get("id"): s for s in reviewed.get("steps", []) if isinstance(s, dict)}
    ids = [s["id"] for s in today["steps"]]
    changed = [s["id"] for s in today["steps"] if old.get(s["id"]) != s] + [i for i in old if i not in ids]
    if changed:
        return f"steps that differ: {', '.join(str(i) for i in changed)}"
    return "the checks, values or runbook header differ"


def check(plan: Plan, path: Path) -> None:
    """Refuse to run anything but the reviewed plan saved at `path`."""
    what = differences(plan, load(path))
    if what is not None:
        raise UsageError(
            f"--plan {path}: today's plan is not the reviewed one ({what}); review it again with plan --save"
        )


def _step(planned: PlannedStep) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for field in STEP_REVIEW.values():
        entries.update(field(planned))
    return entries


def _approval(planned: PlannedStep) -> dict[str, Any]:
    approval = planned.approval
    assert approval is not None
    return {"required": approval.required, "from": list(approval.from_), "timeout": approval.timeout}


def _host(host_plan: HostPlan) -> dict[str, Any]:
    host = host_plan.host
    return {
        "host": host.display,
        "reach": host.reach,
        "local": host.transport is Transport.LOCAL,
        "cwd": host_plan.cwd,
        "env": dict(host_plan.env),
        "skip": host_plan.skip,
        "deferred": host_plan.deferred,
        "commands": {v.platform: v.script for v in host_plan.variants},
        "secret_env": sorted({e for v in host_plan.variants for e in v.secret_env}),
        "secret_vars": dict(host_plan.secret_env),
    }
