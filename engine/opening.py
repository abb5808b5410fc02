"""Opening a run's journal under its lock: a new run's header (the runbook, values, loop items, who, where),
or the resumed run's, and what a new run says about an unfinished one before it.

`commands/run.py` runs the phases; this is the part that writes the run's first records, kept apart so
that the pipeline reads as phases.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine import __version__, records
from engine.locking import this_host
from engine.masking import Masker
from engine.outcomes import RunStatus
from engine.planning import Plan
from engine.state import RunSummary, RunWriter, StateBackend

if TYPE_CHECKING:
    from engine.takeover import TakeOverQuestion


@contextmanager
def opened(
    state: StateBackend,
    plan: Plan,
    run_id: str,
    masker: Masker,
    resuming: bool,
    take_over: TakeOverQuestion | None = None,
) -> Iterator[RunWriter]:
    """The run's journal under its lock (a new run's, or the resumed one's, taking over a silent holder's
    lock once `take_over` says so), closed and the lock released however the run ends."""
    journal = (
        state.resume(plan.runbook.name, run_id, take_over=take_over)
        if resuming
        else new_journal(state, plan, run_id, masker)
    )
    try:
        yield journal
    finally:
        journal.close()


def unfinished_before(state: StateBackend, name: str, run_id: str) -> RunSummary | None:
    """The run of this runbook that `--resume` would have continued, now that a new one starts instead; not
    one that never started a step (declined, preflight failed, Ctrl-C at the warnings): nothing to continue."""
    previous = state.newest(name, excluding=run_id)
    never = (RunStatus.OK, RunStatus.DECLINED, RunStatus.PREFLIGHT_FAILED)
    if previous is None or previous.status in never:
        return None
    return previous if started_a_step(state.records(previous.run_id)) else None


def started_a_step(found: list[dict[str, Any]] | None) -> bool:
    """Whether the run reached a step: started one, or asked for its approvals (a resume goes on waiting, and
    an approval given meanwhile counts), so there is something to continue."""
    return any(isinstance(records.parse(r), records.StepStart | records.ApprovalRequest) for r in found or ())


def new_journal(state: StateBackend, plan: Plan, run_id: str, masker: Masker) -> RunWriter:
    """Take the lock and start the run's journal with its header; keep the runbook as it was run (masked:
    a secret's default stays out of it) to show what changed if a resume finds the file different."""
    runbook = plan.runbook
    header = records.run(
        run_id,
        records.RunbookRef(
            name=runbook.name,
            version=runbook.version,
            sha256=runbook.document.sha256,
            path=str(runbook.document.path),
        ),
        [records.Use(u.step, u.path, u.sha256) for u in plan.uses],
        plan.values.masked(),
        loops(plan, masker),
        platform=plan.platform,
        engine_version=__version__,
        user=getpass.getuser(),
        hostname=this_host(),
        pid=os.getpid(),
        argv=[masker.mask(arg) for arg in sys.argv],
        resolution=_resolution(plan),
    )
    return state.start(runbook.name, header, masker.mask(runbook.document.text))


def loops(plan: Plan, masker: Masker | None = None) -> dict[str, list[Any]]:
    """The plan's loop items by step (`rotate`, `snapshot/rotate`) as the journal keeps them, secrets masked;
    a resume matches them with its own (`resume.match_items`)."""
    mask = (masker or Masker(plan.values.secret_values())).mask
    found: dict[str, list[Any]] = {}
    for planned in plan.steps:
        if planned.item is not None:
            scope = planned.scope.name
            step = f"{scope}/{planned.step.id}" if scope else planned.step.id
            found.setdefault(step, []).append(_masked(planned.item.value, mask))
    return found


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {str(k): _masked(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v, mask) for v in value]
    return value


def _resolution(plan: Plan) -> dict[str, Any] | None:
    """Where each SSH host name resolves as a run starts, for its header: a resume checks it (`resume.moved_hosts`).
    None for a run of local steps only, which then loads nothing of SSH (`reviewing` reads ~/.ssh/config)."""
    if not plan.remote_hosts():
        return None
    from engine import reviewing

    return reviewing.resolution_of(plan)
