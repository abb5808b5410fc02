"""The state-backend seam: where runs are journaled, locked and read back.

A backend keeps, per run, its write-ahead journal (the records `engine.records` builds), a copy of the
runbook as it was run, and a lock per runbook so that one runbook runs once at a time. The runner and
`commands/run.py` see only these two protocols; `engine.state.open_state` is the one place a backend is
chosen (files today; PostgreSQL plugs in beside it).

Why the lock and the journal are one handle (`RunWriter`): on a database the lock and the journal's inserts
share one connection, and every insert can be fenced by the lock, so a successful append *proves* the lock is
still held — no step starts without the lock — and no separate check is needed. On files the flock belongs
to the open lock file, which the kernel releases when the holder dies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from engine.journal import OutputFile
from engine.locking import LockHolder
from engine.runfilter import RunFilter
from engine.runs import UNFINISHED, UNREADABLE, RunSummary

if TYPE_CHECKING:
    from engine.approvals.desk import Desk  # a run that asks for approvals loads it (`approvals.gating`)

ABANDONED = "abandoned"
"""A shared run with no `run-end` whose lock nobody holds: its holder vanished (a backend that can tell)."""

TakeOver = Callable[[LockHolder], bool]
"""Asks the operator whether to end a silent holder's session and take its lock (`--take-over`)."""

__all__ = [
    "ABANDONED",
    "UNFINISHED",
    "UNREADABLE",
    "LockHolder",
    "OutputFile",
    "RunFilter",
    "RunSummary",
    "RunWriter",
    "StateBackend",
    "TakeOver",
]


class RunWriter(Protocol):
    """One run's journal and its runbook's lock, held together from `start`/`resume` to `close`."""

    run_id: str
    where: str
    """Where the journal is, for the line printed at the run's start (`journal /x/journal.jsonl`)."""
    taken_over: LockHolder | None
    """A holder that died holding the lock, which this run took over (said on the terminal)."""

    def append(self, record: Mapping[str, Any]) -> None:
        """Make `record` durable before returning; callers appending at once share one flush (group commit).
        Raises `JournalError` on any failure, and refuses every later append after one; raises `LockLost`
        (a `JournalError`) when the lock was lost."""
        ...

    def output_file(self, step_id: str, host: str) -> OutputFile:
        """The full output of a step on a host: always a local file on this machine."""
        ...

    def close(self) -> None:
        """Close the journal and the output files, and release the lock."""
        ...


class StateBackend(Protocol):
    """Where runs live: their journals, locks and runbook copies."""

    location: str
    """Where the state is, for messages (`/x/.runbook`, a database): "no unfinished run … in <location>"."""

    def start(self, runbook_name: str, header: Mapping[str, Any], runbook_text: str) -> RunWriter:
        """Take the runbook's lock (`LockHeld` naming the holder if it is held), create the run named by
        `header` (a `records.run` record, its `run_id` new), make the header durable and keep `runbook_text`
        (already masked) as the runbook as run."""
        ...

    def resume(self, runbook_name: str, run_id: str, *, take_over: TakeOver | None = None) -> RunWriter:
        """Take the runbook's lock and append to an existing run (a torn last record is cut off first).
        With `take_over` (`--take-over`), a holder that is alive but silent (a stale heartbeat, where the
        backend has one) is ended once `take_over(holder)`, the operator's typed confirmation, says yes;
        a backend whose lock frees itself with its holder (files) never takes one over."""
        ...

    def holder(self, runbook_name: str) -> LockHolder | None:
        """Who holds the runbook's lock now (a live holder only), or None."""
        ...

    def records(self, run_id: str) -> list[dict[str, Any]] | None:
        """A run's committed records, header first, for `engine.history`; None if there is no such run.
        A damaged journal raises `JournalError`."""
        ...

    def runs(self, runbook: str | None = None, where: RunFilter | None = None) -> list[RunSummary]:
        """Every run (of `runbook` if given, matching `where` if given), newest first; one that cannot be
        read is listed as UNREADABLE with its problem (only when unfiltered: such a run has no name)."""
        ...

    def prune(self, older_than: timedelta) -> int:
        """Delete the runs that started longer ago than `older_than` (never one still running); how many."""
        ...

    def newest(self, runbook: str, excluding: str | None = None) -> RunSummary | None:
        """`runs(runbook)[0]` leaving out `excluding`, cheaply: every `run` asks it at start."""
        ...

    def runbook_copy(self, run_id: str) -> str | None:
        """The runbook's text as it was run (secrets masked), or None if it was not kept."""
        ...

    def approvals(self) -> Desk:
        """Where this state's approval requests wait and approvals arrive (`engine.approvals.desk`); the
        caller closes it."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections); writers it gave out are closed by their owner."""
        ...
