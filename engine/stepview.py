"""One view of a planned step for people: the facts a reviewer reads about how a step runs, worded once.

`runbook plan` prints them in brackets after the step's title, the checklist (Markdown and HTML) after its
id; neither words a fact of its own, so they cannot disagree about what a step does. Each `Fact` names the
`model.Step` field it shows: `tests/test_stepview.py` fails when a field the review covers
(`reviewing.STEP_REVIEW`) shows nowhere in what `plan` prints.

Blocks a person reads apart from these facts (commands and hosts, the confirmation, the manual
instruction, what to record, the result) each renderer lays out in its own medium.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.masking import MASK
from engine.model import DEFAULT_SHELL, Expect
from engine.planning import Plan, PlannedStep
from engine.rendering import names_used


@dataclass(frozen=True)
class Fact:
    field: str  # the `model.Step` field it shows
    text: str  # as a person reads it: "timeout 10 min"


def facts(plan: Plan, planned: PlannedStep, cwd: str | None = None) -> tuple[Fact, ...]:
    """How a step runs, in the order a person asks: where, how many at once, for how long, how judged.

    `cwd`: the directory every host shares, for a renderer that shows the commands once (the checklist;
    `plan` shows each host's with its command)."""
    step = planned.step
    if planned.manual is not None:
        return (Fact("manual", "by hand"), *_when(planned), *_approval(planned))
    found = [Fact("on", where(plan, planned.target, len(planned.hosts)))]
    if step.run_once:
        found.append(Fact("run_once", "once: on the first host not left out"))
    elif planned.fan_out and len(planned.hosts) > 1:
        found.append(Fact("concurrency", f"{planned.concurrency} at a time"))
    if cwd:
        found.append(Fact("cwd", f"in {cwd}"))
    if step.timeout:
        found.append(Fact("timeout", f"timeout {seconds(step.timeout)}"))
    if step.until is not None:
        found.append(Fact("until", f"until {step.until.text}{_values_read(step.until.text, planned)}"))
    if step.retries.count:
        every = f", every {seconds(step.retries.delay)}" if step.retries.delay else ""
        found.append(Fact("retries", f"retries {step.retries.count}{every}"))
    if step.deadline is not None:
        found.append(Fact("deadline", f"deadline {seconds(step.deadline)}"))
    if step.expect != Expect():
        found.append(Fact("expect", _expect(step.expect)))
    if step.shell != DEFAULT_SHELL:
        found.append(Fact("shell", f"shell {step.shell}"))
    found += _when(planned)
    if step.continue_on_error:
        found.append(Fact("continue_on_error", "continues on error"))
    if step.max_failed_hosts:
        found.append(Fact("max_failed_hosts", f"up to {step.max_failed_hosts} failed hosts allowed"))
    return (*found, *_approval(planned))


def _approval(planned: PlannedStep) -> list[Fact]:
    """`approval:`: how many others approve, who may, how long the run waits; 0 is said as a choice."""
    approval = planned.approval
    if approval is None:
        return []
    if approval.required == 0:
        return [Fact("approval", "no approval required (approvals: 0, set knowingly)")]
    count = "________" if approval.required is None else str(approval.required)
    who = f"members of {', '.join(approval.from_)}" if approval.from_ else "any operator"
    wait = f", waits {seconds(approval.timeout)}" if approval.timeout else ""
    return [Fact("approval", f"needs {count} approval(s) by other operators ({who}){wait}")]


def group_heading(planned: PlannedStep, previous: PlannedStep | None) -> str | None:
    """Where a group's run begins (a batch, an item): `upgrade: Upgrade node by node (batch 2/3: node2)`,
    what the group is, for the numbered steps under it (None inside a run, and outside groups)."""
    place = planned.place
    if place is None or (
        previous is not None and previous.place == place and previous.scope == planned.scope
    ):
        return None
    group = place.group
    facts = [f"a group of {len(group.steps)} step{'s' if len(group.steps) != 1 else ''}"]
    if place.batch is not None:
        size = (
            f"{group.serial} of the hosts" if isinstance(group.serial, str) else f"{len(place.batch.hosts)}"
        )
        facts.append(f"rolls over {group.on}, {size} at a time ({place.batch.count} batches)")
    facts += [f"only when {group.when.text}"] if group.when is not None else []
    facts += [f"up to {group.max_failed_hosts} failed hosts allowed"] if group.max_failed_hosts else []
    run = f" ({place.label})" if place.label else ""
    return f"{planned.scope.scoped(group.id)}: {group.title}{run}  [{', '.join(facts)}]"


def _when(planned: PlannedStep) -> list[Fact]:
    """The step's `when`, after its group's (both must hold)."""
    own = (planned.step.when,) if planned.step.when is not None else ()
    whens = (*(planned.place.whens if planned.place else ()), *own)
    return [Fact("when", f"only when {' and '.join(w.text for w in whens)}")] if whens else []


def _values_read(expression: str, planned: PlannedStep) -> str:
    """The values an expression reads, as the run will judge it: ` (version = "1.2")` (a secret masked)."""
    values = planned.scope.values
    names = sorted(names_used("{{ " + expression + " }}") & set(values.values))
    shown = [
        f"{n} = {MASK if n in values.secrets else json.dumps(values.values[n], default=str)}" for n in names
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _expect(expect: Expect) -> str:
    """`expect: {exit_code: [0, 3], stdout_contains: ok}` → "expects exit code 0 or 3, stdout containing "ok"."""
    parts = []
    if expect.exit_codes != Expect().exit_codes:
        parts.append(f"exit code {' or '.join(str(c) for c in expect.exit_codes)}")
    if expect.stdout_contains is not None:
        parts.append(f"stdout containing {json.dumps(expect.stdout_contains, ensure_ascii=False)}")
    if expect.stdout_matches is not None:
        parts.append(f"stdout matching /{expect.stdout_matches}/")
    return f"expects {', '.join(parts)}"


def where(plan: Plan, target: str, count: int) -> str:
    resolved = plan.targets.get(target)
    if resolved is not None and resolved.local and count == 1:
        return f"on {target} (this machine)" if target != "local" else "on this machine"
    return f"on {target} ({count} host{'s' if count != 1 else ''})"


def seconds(value: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"
