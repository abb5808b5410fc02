"""`runbook approvals`: the requests waiting for an approval — run, step, requester, since, what they need.

On the shared state every operator sees every team member's requests; on files, the requests of the runs
kept in this state directory. Each line ends with the exact command that approves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.flags import option
from engine.state import open_state
from engine.state.options import FROM_ENVIRONMENT, StateOptions


@dataclass(frozen=True, kw_only=True)
class ApprovalsOptions:
    state_dir: str | None = option(
        None,
        help="On files: where runs and their approval requests live (default: $RUNBOOK_STATE_DIR or ./.runbook).",
        metavar="DIR",
    )


def main(chosen: ApprovalsOptions, where: StateOptions = FROM_ENVIRONMENT) -> int:
    state = open_state(where.state, Path.cwd(), chosen.state_dir)
    try:
        desk = state.approvals()
        try:
            pending = desk.pending()
        finally:
            desk.close()
    finally:
        state.close()
    if not pending:
        print(f"no approval pending ({state.location})")
        return 0
    print(f"{'run':<28} {'step':<20} {'requester':<12} {'since':<24} needs")
    for request in pending:
        who = f"from {', '.join(request.from_)}" if request.from_ else "any operator"
        print(
            f"{request.run_id:<28} {request.step:<20} {request.requester:<12} {request.since:<24} "
            f"{request.required} ({who}) of {request.runbook}: runbook approve {request.run_id} {request.step}"
        )
    return 0
