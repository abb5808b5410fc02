"""The checklist as data: a `Plan` (and, for a filled one, a run's journal) turned into sections and items.

Everything shown comes from the plan that `plan` prints and `run` executes; this module only chooses what
a person with a pen needs and in which order. Both renderers (Markdown, HTML) read these values and nothing
else, so they cannot disagree about what a step is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine import stepview
from engine.checklist.approving import Signature, signatures
from engine.history import Attempt, RunHistory
from engine.model import PLATFORMS
from engine.outcomes import HostOutcome, Status
from engine.planning import PLATFORM_LABELS, Blank, HostPlan, Plan, PlannedCheck, PlannedStep
from engine.records import Confirmation, Manual
from engine.transports import Transport

SECRET_TEXT = "(secret: entered at run time)"
BLANK = str(Blank(""))


@dataclass(frozen=True)
class Command:
    label: str  # "Linux", "macOS", … or "" when one form serves every platform
    text: str


@dataclass(frozen=True)
class Box:
    """One tick: a step (or check) on one host."""

    host: str
    local: bool
    commands: tuple[Command, ...] = ()  # only when this host's command differs from the item's
    cwd: str | None = None
    note: str = ""
    outcome: Attempt | None = None


@dataclass(frozen=True)
class Item:
    """A preflight check or a step, with its boxes."""

    kind: str  # "check", "step" or "manual"
    number: int | str | None
    id: str
    title: str
    boxes: tuple[Box, ...]
    facts: tuple[str, ...] = ()
    description: str = ""
    commands: tuple[Command, ...] = ()
    env: tuple[str, ...] = ()
    fan_out: bool = False
    result: str = ""
    confirm: str | None = None
    confirm_text: str | None = None
    confirmed: Confirmation | None = None
    manual: str | None = None
    record_prompt: str | None = None
    record_expect: str | None = None
    answer: Manual | None = None
    approval: str | None = None  # what `approval:` asks, as the plan words it
    signatures: tuple[Signature, ...] = ()  # a line per required approver, or who approved
    group: str = ""  # where a group's run (an item, a batch) begins: what the group is


@dataclass(frozen=True)
class Value:
    name: str
    text: str | None  # None: a blank to fill in
    description: str
    source: str
    secret: bool = False


@dataclass(frozen=True)
class Checklist:
    title: str
    name: str
    version: str
    sha256: str
    source: str
    path: str
    description: str
    platform: str
    warnings: tuple[str, ...]
    values: tuple[Value, ...]
    checks: tuple[Item, ...]
    steps: tuple[Item, ...]
    run: RunHistory | None = None

    @property
    def changed(self) -> bool:
        """The runbook is not the one the run used: its commands are today's, not necessarily the run's."""
        return self.run is not None and self.run.runbook.sha256 not in ("", self.sha256)

    @property
    def day(self) -> str:
        return (self.run.started if self.run else "").partition("T")[0]


def build(plan: Plan, run: RunHistory | None = None) -> Checklist:
    rb = plan.runbook
    return Checklist(
        title=rb.title,
        name=rb.name,
        version=rb.version,
        sha256=rb.document.sha256,
        source=rb.source,
        path=str(rb.document.path),
        description=rb.description,
        platform=platform_note(plan),
        warnings=plan.warnings,
        values=values(plan, run),
        checks=tuple(_check(plan, c, run) for c in plan.checks),
        steps=tuple(
            replace(_step(plan, s, run), group=stepview.group_heading(s, before) or "")
            for before, s in zip((None, *plan.steps), plan.steps)
        ),
        run=run,
    )


def platform_note(plan: Plan) -> str:
    if plan.platform is not None:
        return f"{PLATFORM_LABELS.get(plan.platform, plan.platform)} (commands for this platform only)"
    used = {v.platform for s in plan.steps for h in s.hosts for v in h.variants}
    labels = [PLATFORM_LABELS[p] for p in (*PLATFORMS, "default") if p in used]
    return f"any: each variant labelled ({', '.join(labels)})" if labels else "any"


def values(plan: Plan, run: RunHistory | None) -> tuple[Value, ...]:
    """Every variable in the runbook's order: given values, blanks for those not given, secrets never."""
    given, rows = plan.values, []
    for variable in plan.runbook.variables:
        source = given.sources.get(variable.name, "not given")
        if run is not None and source.startswith("journal"):
            source = f"run {run.run_id}"
        if variable.secret:
            rows.append(Value(variable.name, SECRET_TEXT, variable.description, "secret", secret=True))
        elif variable.name in given.values:
            rows.append(
                Value(variable.name, _text(given.values[variable.name]), variable.description, source)
            )
        else:
            required = "required, " if variable.required else ""
            rows.append(Value(variable.name, None, variable.description, f"{required}not given"))
    return tuple(rows)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _commands(host: HostPlan) -> tuple[Command, ...]:
    return tuple(Command(v.label, v.script.rstrip("\n")) for v in host.variants)


def _shared(hosts: tuple[HostPlan, ...]) -> tuple[tuple[Command, ...], str | None, bool]:
    """The commands and cwd every host shares (shown once), and whether there are such."""
    forms = {(_commands(h), h.cwd) for h in hosts}
    if len(forms) == 1:
        commands, cwd = forms.pop()
        return commands, cwd, True
    return (), None, False


def _boxes(
    hosts: tuple[HostPlan, ...], shared: bool, outcome: Callable[[str], Attempt | None]
) -> tuple[Box, ...]:
    boxes = []
    for hp in hosts:
        note = (
            f"skipped: {hp.skip}"
            if hp.skip
            else ("command rendered again at run time" if hp.deferred else "")
        )
        boxes.append(
            Box(
                hp.host.name,
                hp.host.transport is Transport.LOCAL,
                () if shared else _commands(hp),
                None if shared else hp.cwd,
                note,
                outcome(hp.host.name),
            )
        )
    return tuple(boxes)


def _check(plan: Plan, check: PlannedCheck, run: RunHistory | None) -> Item:
    """A preflight check; on a filled checklist, ticked once the run went past preflight (a step started:
    every check had passed, as none is journaled on its own)."""
    commands, cwd, shared = _shared(check.hosts)
    passed = run is not None and bool(run.hosts)

    def outcome(host: str) -> Attempt | None:
        return (
            Attempt(HostOutcome(check.title, host, Status.OK, reason="passed at preflight"))
            if passed
            else None
        )

    facts = (stepview.where(plan, check.target, len(check.hosts)), *([f"in {cwd}"] if cwd else ()))
    facts += ("only before the first step",) if check.only_before_start else ()
    return Item(
        "check",
        None,
        "",
        check.title,
        _boxes(check.hosts, shared, outcome),
        facts,
        commands=commands,
        fan_out=len(check.hosts) > 1,
    )


def _step(plan: Plan, planned: PlannedStep, run: RunHistory | None) -> Item:
    if planned.manual is not None:
        return _manual(plan, planned, run)
    step = planned.step
    hosts = planned.shown_hosts  # run_once: one box
    commands, cwd, shared = _shared(hosts)
    single = len(hosts) == 1

    def outcome(host: str) -> Attempt | None:
        return run.outcome(planned.id, host, single) if run else None

    return Item(
        "step",
        planned.label,
        planned.id,
        planned.title,
        _boxes(hosts, shared, outcome),
        _facts(plan, planned, cwd),
        step.description,
        commands,
        env=tuple(f"{k}={v}" for k, v in (planned.hosts[0].shown_env() if planned.hosts else ())),
        fan_out=planned.fan_out,
        result="; ".join(f"on {h}: {text}" for h, text in planned.results()) or planned.result or "",
        confirm=planned.confirm_question,
        confirm_text=planned.confirm_text,
        confirmed=run.confirmations.get(planned.id) if run else None,
        approval=_approval_fact(plan, planned),
        signatures=signatures(planned, run, run.started[:10] if run else ""),
    )


def _manual(plan: Plan, planned: PlannedStep, run: RunHistory | None) -> Item:
    step = planned.step
    outcome = run.outcome(planned.id, "operator", single=True) if run else None
    box = Box("operator", True, note=f"skipped: {planned.skip}" if planned.skip else "", outcome=outcome)
    return Item(
        "manual",
        planned.label,
        planned.id,
        planned.title,
        (box,),
        _facts(plan, planned, None),
        step.description,
        result="; ".join(f"on {h}: {text}" for h, text in planned.results()) or planned.result or "",
        confirm=planned.confirm_question,
        confirm_text=planned.confirm_text,
        confirmed=run.confirmations.get(planned.id) if run else None,
        manual=(planned.manual or "").strip(),
        record_prompt=planned.record_prompt,
        record_expect=_expectation(planned),
        answer=run.answers.get(planned.id) if run else None,
        approval=_approval_fact(plan, planned),
        signatures=signatures(planned, run, run.started[:10] if run else ""),
    )


def _approval_fact(plan: Plan, planned: PlannedStep) -> str | None:
    found = [f.text for f in stepview.facts(plan, planned) if f.field == "approval"]
    return found[0] if found else None


def _expectation(planned: PlannedStep) -> str | None:
    record = planned.step.record
    if record is None:
        return None
    if planned.record_expect is not None:
        return planned.record_expect
    return f"matches {record.matches}" if record.matches else None


def _facts(plan: Plan, planned: PlannedStep, cwd: str | None) -> tuple[str, ...]:
    return (planned.id, *(fact.text for fact in stepview.facts(plan, planned, cwd)))
