"""A run's gate, opened with its journal: the desk of the run's state and what the gate knows of the run.

Opened only when a step of the run asks for approvals (the database's desk is a connection of its own), and
closed with the run. The plan's sha256 is its reviewable form's digest (`reviewing`), the one `plan --save`
writes; the requester is who the desk says (the database login, or the OS user on files).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from engine.console import Terminal
from engine.errors import UsageError
from engine.planning import Plan, PlannedStep
from engine.records import ApprovalDecision
from engine.state.base import RunWriter, StateBackend

__all__ = ["OPEN", "Asking", "Checkpoint", "asks", "gated"]


class Checkpoint(Protocol):
    """Where the runner stops a step until it may run: a `Gate`, or `OPEN` when nothing is to be approved."""

    def check(self, planned: PlannedStep) -> None: ...


class _Open:
    """The checkpoint of a run with no step under `approval:` (and of the runner's own tests): never waits."""

    def check(self, planned: PlannedStep) -> None:
        return None


OPEN: Checkpoint = _Open()


@dataclass(frozen=True)
class Rehearsed:
    """A rehearsal's checkpoint: nothing is executed, so nobody is asked; it says what a run would wait for."""

    terminal: Terminal

    def check(self, planned: PlannedStep) -> None:
        approval = planned.approval
        if approval is not None and approval.required != 0:
            self.terminal.say(
                f"  approval: a run waits here for {approval.required or 1} approval(s) "
                "(rehearsal: not asked, nothing is executed)",
                "yellow",
            )


@dataclass(frozen=True)
class Asking:
    """What the run's flags and the run it resumes say about approvals."""

    break_glass: str | None = None  # `--break-glass REASON`
    allowed_signers: str | None = None  # `--allowed-signers FILE`
    answered: tuple[ApprovalDecision, ...] = ()  # journaled by the run being resumed
    rehearsal: bool = False  # `runbook rehearse`: nothing is executed, so nobody is asked

    def __post_init__(self) -> None:
        if self.break_glass is not None and not self.break_glass.strip():
            raise UsageError('--break-glass needs a reason: --break-glass "why nobody else could approve"')


def asks(steps: Iterable[PlannedStep]) -> bool:
    """Whether a step of these asks anybody for an approval."""
    return any(s.approval is not None and s.approval.required != 0 for s in steps)


@contextmanager
def gated(
    state: StateBackend,
    plan: Plan,
    steps: tuple[PlannedStep, ...],
    journal: RunWriter,
    terminal: Terminal,
    asking: Asking,
) -> Iterator[Checkpoint]:
    """The gate; `OPEN` when nothing in this run is to be approved; in a rehearsal, one that only says what
    a real run would wait for."""
    if not asks(steps):
        yield OPEN
        return
    if asking.rehearsal:  # practice: the rehearsal's own state on this machine, where nobody else approves
        yield Rehearsed(terminal)
        return
    from engine import reviewing
    from engine.approvals.waiting import Gate, Run  # only a run that asks for approvals waits for them

    desk = state.approvals()
    try:
        run = Run(
            run_id=journal.run_id,
            runbook=plan.runbook.name,
            runbook_sha256=plan.runbook.document.sha256,
            plan_sha256=reviewing.digest(reviewing.reviewable(plan)),
            user=desk.who(),
            how_to_approve="runbook approve",
            break_glass=asking.break_glass,
            allowed_signers=asking.allowed_signers,
        )
        gate = Gate(desk, journal, terminal, run)
        gate.remember(asking.answered)
        yield gate
    finally:
        desk.close()
