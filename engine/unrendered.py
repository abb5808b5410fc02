"""A template that fails with the run's values, once steps have run: what it means for the run.

The plan renders everything it can; what reads an earlier step's output (`steps.a.stdout.split('|')[1]`) is
rendered again when its step is reached. Failing then is not an invalid runbook (steps already ran, and
the runbook validated): it is that step failing, journaled with the template's place and error, so the run
ends as a step failure that a resume runs again. A `result` text that cannot be rendered is said instead,
and its step, which ran well, stays done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine import records, resulting
from engine.console import Terminal
from engine.errors import InvalidRunbook
from engine.judging import judge_step
from engine.outcomes import HostOutcome, Status, StepOutcome
from engine.planning import PlannedStep, StepRenderer
from engine.records import OPERATOR
from engine.state import RunWriter


def failed(
    planned: PlannedStep,
    error: InvalidRunbook,
    journal: RunWriter,
    end: Callable[[HostOutcome], None],
    terminal: Terminal,
) -> StepOutcome:
    """The step failed on each host it would have run on (the operator, for a manual step): each attempt
    journaled, started and `end`ed, like one that ran, with the template's place and error as the reason."""
    why = terminal.masker.mask("cannot render: " + "; ".join(map(str, error.problems)))
    names = [h.host.name for h in planned.hosts if not h.skip] or [OPERATOR]
    ended = tuple(HostOutcome(planned.id, name, Status.FAILED, reason=why) for name in names)
    for outcome in ended:
        journal.append(records.step_start(planned.id, outcome.host, 1))
        end(outcome)
    return judge_step(planned.id, planned.step, ended)[0]


def result_lines(
    renderer: StepRenderer, planned: PlannedStep, outcome: StepOutcome, steps: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """The `result:` lines shown once the step went well, with their style; one that cannot be rendered
    is said instead (the step, which ran well, stays done)."""
    try:
        return [(line, "green") for line in resulting.said(renderer, planned, outcome, steps)]
    except InvalidRunbook as error:
        return [(f"  result: cannot render: {error.problems[0]}", "yellow")]
