"""`runbook checklist FILE`: the plan as a checklist to print and tick, in Markdown or standalone HTML.

`--journal RUN_ID` fills it from a run. The run's values (secrets excepted: the journal masks them) and
platform render the plan, as a resume would, so the commands shown are the ones that ran; `--var` and
`--platform` still win over them.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from engine.checklist import build, to_html, to_markdown
from engine.errors import InvalidRunbook, UsageError
from engine.flags import option
from engine.history import RunHistory, fold
from engine.masking import MASK
from engine.options import Options, prepare
from engine.outcomes import StepOutcome
from engine.planning import Plan
from engine.state import StateBackend, open_state
from engine.state.options import FROM_ENVIRONMENT, StateOptions
from engine.validation import validate

Read = TypeVar("Read", bound=Options)


class Format(StrEnum):
    MD = "md"
    HTML = "html"


class Paper(StrEnum):
    AUTO = "auto"
    A4 = "a4"
    LETTER = "letter"


@dataclass(frozen=True, kw_only=True)
class ChecklistRunbook(Options):
    """A checklist shows every platform's variant unless told one."""

    platform: str | None = option(
        None, help="Show only this platform's commands for local steps (default: every variant, labelled)."
    )


@dataclass(frozen=True, kw_only=True)
class ChecklistOptions:
    format: Format = option(
        Format.MD, help="md (Markdown task list, the default) or html (one standalone printable page)."
    )
    output: str | None = option(
        None, help="Write to this file instead of standard output.", metavar="FILE", short="o"
    )
    journal: str | None = option(
        None,
        help="Fill the checklist from this run's journal: RUN_ID, a directory under STATE_DIR/runs.",
        metavar="RUN_ID",
    )
    state_dir: str | None = option(
        None, help="Where runs are kept (default: $RUNBOOK_STATE_DIR or .runbook).", metavar="DIR"
    )
    paper: Paper = option(Paper.AUTO, help="HTML page size: auto (the printer's, default), a4 or letter.")


def main(options: ChecklistRunbook, chosen: ChecklistOptions, where: StateOptions = FROM_ENVIRONMENT) -> int:
    journal, state_dir, output = chosen.journal, chosen.state_dir, chosen.output
    validated = validate(Path(options.file), options.file)
    run = load_run(open_state(where.state, Path.cwd(), state_dir), journal) if journal else None
    if run is not None:
        name = validated.runbook.name
        if run.runbook.name not in ("", name):
            raise UsageError(f"--journal {run.run_id} is a run of runbook {run.runbook.name!r}, not {name!r}")
        options = with_run(options, run, {v.name for v in validated.runbook.variables})
    _, plan = prepare(
        options, any_platform=options.platform is None, allow_missing=True, validated=validated, paper=True
    )
    checklist = build(with_outputs(plan, run) if run is not None else plan, run)
    text = to_html(checklist, chosen.paper) if chosen.format == Format.HTML else to_markdown(checklist)
    if output is None or output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"checklist written to {output}", file=sys.stderr)
    return 0


def load_run(state: StateBackend, run_id: str) -> RunHistory:
    records = state.records(run_id)
    if records is None:
        raise UsageError(
            f"--journal {run_id}: no journal at {state.location} for run {run_id} "
            "(--state-dir or RUNBOOK_STATE_DIR moves it)"
        )
    return fold(records)


def with_outputs(plan: Plan, run: RunHistory) -> Plan:
    """The plan with what the run's steps printed, as the run rendered it: a command or text that reads an
    earlier step's output shows the value the journal has, not a blank (one it cannot render keeps it)."""
    known: dict[str, dict[str, Any]] = {}  # `steps.` of each runbook (a used one's under its step's id)
    outcomes = run.outcomes
    steps = []
    for planned in plan.steps:
        scope = known.setdefault(planned.scope.name, {})
        if planned.deferred and scope:
            with contextlib.suppress(InvalidRunbook):
                planned = plan.renderer.step(planned, scope, {})
        hosts = tuple(a.outcome for (step, _), a in outcomes.items() if step == planned.id)
        if hosts:
            done = StepOutcome(planned.id, hosts).context()
            if planned.item is not None:  # a loop's `steps.<id>` is its last item's, with every item's
                done = {**done, "items": [*scope.get(planned.step.id, {}).get("items", ()), done]}
            scope[planned.step.id] = done
        steps.append(planned)
    return replace(plan, steps=tuple(steps))


def with_run(options: Read, run: RunHistory, known: set[str]) -> Read:
    """The run's platform and values (secrets are masked in the journal, so never taken from it)."""
    recorded = {name: value for name, value in run.variables.items() if value != MASK and name in known}
    return replace(
        options, recorded={**recorded, **(options.recorded or {})}, platform=options.platform or run.platform
    )
