"""Journals folded: the list of past runs (`runbook runs`), the run `--resume` continues, and the last
known state of every step and host.

Only reads: `engine.journal` owns the records (its docstring is their contract) and reads their committed
lines back (`read_journal`); this module makes sense of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import JournalError
from engine.journal import JOURNAL_NAME, Record, read_journal, runs_directory
from engine.outcomes import RunStatus, Status

UNFINISHED = "unfinished"
"""A run's state when its journal has no `run-end`: crashed, killed, or still running."""
UNREADABLE = "unreadable"
"""A run's state when its journal cannot be read."""


@dataclass(frozen=True)
class RunSummary:
    """One run as `runbook runs` lists it and `--resume` finds it."""

    run_id: str
    runbook: str
    version: str | None
    sha256: str | None
    user: str | None
    started: str
    finished: str | None
    status: str  # run-end's `RunStatus`, UNFINISHED or UNREADABLE
    directory: Path
    problem: str | None = None  # why an "unreadable" journal cannot be read


def summarize_run(directory: Path) -> RunSummary | None:
    """Summarise one run directory; None if it has no header yet (a crash right after it was made)."""
    path = directory / JOURNAL_NAME
    records = read_journal(path) if path.exists() else []
    if not records:
        return None
    header, last = records[0], records[-1]
    if header.get("type") != Record.RUN:
        raise JournalError(f"{path}:1: the first record is not the run header")
    runbook: dict[str, Any] = header["runbook"] if isinstance(header.get("runbook"), dict) else {}
    ended = last.get("type") == Record.RUN_END
    return RunSummary(
        run_id=str(header.get("run_id", directory.name)),
        runbook=str(runbook.get("name", "")),
        version=_optional_str(runbook.get("version")),
        sha256=_optional_str(runbook.get("sha256")),
        user=_optional_str(header.get("user")),
        started=str(header.get("time", "")),
        finished=_optional_str(last.get("time")) if ended else None,
        status=str(last.get("status", RunStatus.FAILED)) if ended else UNFINISHED,
        directory=directory,
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _summary_or_problem(directory: Path) -> RunSummary | None:
    """A damaged journal is listed as "unreadable" (with why) instead of hiding every other run."""
    try:
        return summarize_run(directory)
    except JournalError as error:
        return RunSummary(directory.name, "", None, None, None, "", None, UNREADABLE, directory, str(error))


def list_runs(state_dir: Path, runbook: str | None = None) -> list[RunSummary]:
    """Every run in `state_dir` (of `runbook` if given), newest first.

    "unfinished" means the run never wrote its `run-end`; whether one is still running is the lock's to say.
    """
    runs_dir = runs_directory(state_dir)
    if not runs_dir.is_dir():
        return []
    summaries = [_summary_or_problem(directory) for directory in runs_dir.iterdir() if directory.is_dir()]
    matching = [s for s in summaries if s is not None and (runbook is None or s.runbook == runbook)]
    return sorted(matching, key=lambda s: (s.started or s.run_id, s.run_id), reverse=True)


def latest_unfinished(state_dir: Path, runbook_name: str) -> RunSummary | None:
    """The run `--resume` continues: the newest run of the runbook, unless it finished well.

    A failed or interrupted run is resumable as much as a crashed one (fix the cause, resume); an older run
    is not, once a newer one was started from scratch.
    """
    runs = list_runs(state_dir, runbook_name)
    return runs[0] if runs and runs[0].status != RunStatus.OK else None


@dataclass(frozen=True)
class RecordedOutcome:
    """The last known state of one step on one host, folded from the journal."""

    step: str
    host: str
    status: Status
    attempt: int
    exit_code: int | None


def fold_outcomes(records: list[dict[str, Any]]) -> dict[tuple[str, str], RecordedOutcome]:
    """The latest state of each (step, host), in record order: a later attempt overrides an earlier one.

    A start without a later end is UNKNOWN: the command may or may not have had its effect, so resume asks.
    """
    folded: dict[tuple[str, str], RecordedOutcome] = {}
    for record in records:
        kind, step, host = record.get("type"), str(record.get("step")), str(record.get("host"))
        attempt = int(record.get("attempt") or 1)
        if kind == Record.STEP_START:
            folded[(step, host)] = RecordedOutcome(step, host, Status.UNKNOWN, attempt, None)
        elif kind == Record.STEP_END:
            status = Status.recorded(record.get("status"))
            folded[(step, host)] = RecordedOutcome(step, host, status, attempt, record.get("exit_code"))
        elif kind == Record.MANUAL:
            status = Status.OK if record.get("ok") else Status.FAILED
            folded[(step, host)] = RecordedOutcome(step, host, status, attempt, None)
    return folded


def outcomes(records: list[dict[str, Any]]) -> dict[tuple[str, str], Status]:
    """(step, host) -> its last known `Status`."""
    return {key: outcome.status for key, outcome in fold_outcomes(records).items()}
