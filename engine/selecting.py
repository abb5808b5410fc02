"""Which steps a run runs (`--only`, `--from`), and the selections refused before anything runs.

A selection that leaves out a step whose output a chosen step reads could only fail once the steps before it
had run; `--confirm-manual` cannot answer a `matches` record. Both are said at once, with exit 2, before
the lock, the journal or any connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.errors import UsageError
from engine.outcomes import Status
from engine.planning import Plan, PlannedStep
from engine.records import OPERATOR
from engine.result_reads import steps_read

if TYPE_CHECKING:
    from engine.resume import Previous


def _named(planned: PlannedStep, wanted: str) -> bool:
    """`rotate[2]` is one item, `rotate` every item of the loop, `snapshot` every step the step uses, and
    `upgrade` every step of the group (`upgrade[node2]` those of one batch)."""
    step = planned.scope.scoped(planned.step.id)
    return wanted in (planned.id, step) or planned.id.startswith((wanted + "/", wanted + "["))


def chosen(
    plan: Plan, only: str | None, from_step: str | None, resumed: bool = False
) -> tuple[PlannedStep, ...]:
    """The steps `--only`/`--from` choose; a resumed run has the outputs of the steps that ran before."""
    if only and from_step:
        raise UsageError("--only and --from cannot be used together")
    wanted = only or from_step
    if wanted is None:
        return plan.steps
    ids = [s.id for s in plan.steps]
    named = [i for i, s in enumerate(plan.steps) if _named(s, wanted)]
    if not named:
        raise UsageError(f"no step {wanted!r}; steps: {', '.join(ids)}")
    selected = plan.steps[named[0] : named[-1] + 1] if only else plan.steps[named[0] :]
    if not resumed:
        _outputs_run(plan, selected, "--only" if only else "--from", wanted)
    return selected


def answerable(steps: tuple[PlannedStep, ...], previous: Previous | None) -> None:
    """`--confirm-manual` answers a manual step with its expected value; a `matches` record has none, so the
    run is refused before anything runs rather than stopped at that step."""
    unanswerable = [
        p.id
        for p in steps
        if p.step.record and p.step.record.matches and p.record_expect is None
        if previous is None or previous.status((p.id, OPERATOR)) is not Status.OK
    ]
    if unanswerable:
        raise UsageError(
            f"--confirm-manual cannot answer {', '.join(unanswerable)}: a 'matches' record wants the "
            "operator's own answer; run without --confirm-manual (or choose steps without it: --from, --only)"
        )


def _outputs_run(plan: Plan, selected: tuple[PlannedStep, ...], flag: str, wanted: str) -> None:
    """Refuse, before anything runs, a selection that leaves out a step whose output a chosen step reads:
    it could only fail once the steps before it had run."""

    def names(steps: Iterable[PlannedStep]) -> set[str]:
        return {p.scope.scoped(p.step.id) for p in steps} | {p.scope.name for p in steps if p.scope.name}

    left_out = names(p for p in plan.steps if p not in selected) - names(selected)
    for planned in selected:
        for read in sorted(planned.scope.scoped(r) for r in steps_read(planned.step)):
            if read in left_out:
                raise UsageError(
                    f"{flag} {wanted}: step {planned.id!r} reads the output of step {read!r}, which would "
                    f"not run; start at {read!r} or earlier (--from {read}), or --resume the run that ran it"
                )
