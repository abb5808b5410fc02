"""The rehearsal's report: what was rehearsed (runbook, plan, scenario, faults), the timeline on the
simulated clock, each step's commands and answers per host, what each fault caused, and coverage.

Built as blocks (`writing`), written as Markdown (the default, printed) or one print-ready HTML page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from engine import reviewing
from engine.errors import UsageError
from engine.history import Attempt, RunHistory
from engine.planning import Plan
from engine.records import AnsweredBy, Confirmation, Manual
from engine.rehearsal import writing
from engine.rehearsal.coverage import measure
from engine.rehearsal.faults import Fault
from engine.rehearsal.faults import Kind as FaultKind
from engine.rehearsal.stage import Call, Stage
from engine.rehearsal.writing import Block, Code, Heading, Items, Para, Table


class Kind(StrEnum):
    MARKDOWN = "md"
    HTML = "html"


def kind_of(output: str | None) -> Kind:
    """The report's format, from the output file's extension (none: Markdown on standard output)."""
    if output is None or output.endswith(".md"):
        return Kind.MARKDOWN
    if output.endswith((".html", ".htm")):
        return Kind.HTML
    raise UsageError(f"-o {output!r}: the report is written as .md or .html")


@dataclass(frozen=True)
class Facts:
    plan: Plan
    stage: Stage
    run: RunHistory  # the rehearsal's journal, folded (`engine.history`)
    auto: bool
    faults: tuple[Fault, ...]


def render(facts: Facts, kind: Kind) -> str:
    blocks = build(facts)
    rb = facts.plan.runbook
    title = f"Rehearsal of {rb.name} {rb.version}: nothing was executed"
    return writing.markdown(blocks) if kind is Kind.MARKDOWN else writing.page(title, blocks)


def build(facts: Facts) -> list[Block]:
    run = facts.run
    return [
        Heading(1, f"Rehearsal: {facts.plan.runbook.title}"),
        Para("A rehearsal: nothing was executed on any machine and no connection was opened."),
        _about(facts, run),
        Heading(2, "Timeline (simulated clock)"),
        _timeline(facts.stage.calls),
        Heading(2, "Questions and answers"),
        _questions(run),
        Heading(2, "Steps"),
        *_steps(facts, run.outcomes),
        Heading(2, "Faults and what they caused"),
        Items(tuple(_caused(f, facts, run.outcomes) for f in facts.faults), "no fault injected"),
        Heading(2, "Coverage: paths this rehearsal never took"),
        *_coverage(facts, run.outcomes),
    ]


def _about(facts: Facts, run: RunHistory) -> Table:
    rb, scenario = facts.plan.runbook, facts.stage.scenario
    script = f"{scenario.path} (sha256 {scenario.sha256})" if scenario.path else "none"
    if scenario.description:
        script += f" — {scenario.description.strip()}"
    answers = "simulated (--auto): expected answers" if facts.auto else "by the person at the terminal"
    status = f"{run.status or 'unfinished'} (exit {run.exit_code})" if run.status else "unfinished"
    rows: list[tuple[str, str]] = [
        ("runbook", f"{rb.name} {rb.version} — {rb.document.path}"),
        ("runbook sha256", rb.document.sha256),
        ("plan sha256", reviewing.digest(reviewing.reviewable(facts.plan))),
        ("scenario", script),
        ("faults", ", ".join(f"`{f}`" for f in facts.faults) or "none"),
        ("questions answered", answers),
        ("rehearsal run", f"{run.run_id}: {status}"),
        ("simulated duration", clock(facts.stage.clock.elapsed)),
    ]
    return Table(("", ""), tuple(rows))


def clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _answer(call: Call) -> str:
    if call.fault is not None and call.fault.kind is FaultKind.KILL:
        said = "none: the engine was killed here"
    elif call.timed_out:
        said = f"timed out after {call.end - call.start:g}s"
    elif call.exit_code is None:
        said = "no exit status (connection lost)"
    else:
        said = f"exit {call.exit_code} after {call.end - call.start:g}s"
    first = call.stdout.strip().splitlines()[:1]
    return said + (f"; stdout: {first[0]}" if first else "")


def _timeline(calls: Sequence[Call]) -> Table:
    rows: list[tuple[writing.Cell, ...]] = [
        (
            clock(c.start),
            str(c.run),
            c.step or "(check)",
            c.host,
            Code(c.command),
            _answer(c),
            c.source,
        )
        for _, c in sorted(enumerate(calls), key=lambda ic: (ic[1].run, ic[1].start, ic[0]))
    ]
    return Table(("time", "run", "step", "host", "command", "answer", "from"), tuple(rows))


def _questions(run: RunHistory) -> Table:
    """Every question the run asked (warnings, confirmations, manual steps, re-runs), in order, and who
    answered it: a person, or the rehearsal (`--auto`, journaled as the flag that answers for one)."""
    asked = [e.record for e in run.events if isinstance(e.record, (Confirmation, Manual))]
    return Table(("step", "question and answer"), tuple((r.step or "(warnings)", _asked(r)) for r in asked))


def _asked(record: Confirmation | Manual) -> str:
    who = "a person" if record.by == AnsweredBy.OPERATOR else f"simulated ({record.by})"
    question = record.question if isinstance(record, Confirmation) else record.prompt
    return f"{question or 'manual step'} → {record.answer!r}, answered by {who}"


def _steps(facts: Facts, outcomes: Mapping[tuple[str, str], Attempt]) -> list[Block]:
    blocks: list[Block] = []
    for planned in facts.plan.steps:
        blocks.append(Heading(3, f"{planned.label}. {planned.id}: {planned.title}"))
        mine = {host: o for (step, host), o in outcomes.items() if step == planned.id}
        if not mine:
            blocks.append(Para("never reached"))
            continue
        rows: list[tuple[writing.Cell, ...]] = []
        for host, outcome in sorted(mine.items()):
            calls = [c for c in facts.stage.calls if c.step == planned.id and c.host == host]
            tries = f" after {outcome.attempt} attempt{'s' if outcome.attempt != 1 else ''}" if calls else ""
            ending = outcome.status.label + tries
            rows += [
                (host, f"run {c.run}, {clock(c.start)}", Code(c.command), _answer(c), c.source) for c in calls
            ]
            rows.append((host, "outcome", "", ending, ""))
        blocks.append(Table(("host", "when", "command", "answer", "from"), tuple(rows)))
    return blocks


def _caused(fault: Fault, facts: Facts, outcomes: Mapping[tuple[str, str], Attempt]) -> str:
    hit = [c for c in facts.stage.calls if c.fault == fault]
    if not hit:
        return f"`{fault}`: never hit (the step did not run on that host)"
    ends = sorted({f"{c.step}@{c.host} (its outcome: {_status(outcomes, c)})" for c in hit})
    reached = {step for step, _ in outcomes}
    later = [s.id for s in facts.plan.steps if s.id not in reached]
    what = f"`{fault}` hit {', '.join(ends)}"
    if facts.stage.run > 1 and fault.kind is FaultKind.KILL:
        what += "; the engine stopped there, and the run was resumed (the step's outcome was unknown)"
    if later:
        what += f"; steps never reached: {', '.join(later)}"
    return what


def _status(outcomes: Mapping[tuple[str, str], Attempt], call: Call) -> str:
    outcome = outcomes.get((str(call.step), call.host))
    return outcome.status.value if outcome else "no outcome recorded"


def _coverage(facts: Facts, outcomes: Mapping[tuple[str, str], Attempt]) -> list[Block]:
    coverage = measure(facts.plan.steps, outcomes, facts.stage.calls)
    blocks: list[Block] = []
    for title, found in coverage.sections():
        blocks += [Heading(3, title), Items(found)]
    return blocks
