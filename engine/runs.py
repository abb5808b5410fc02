"""Reading journals back: their committed records, the list of past runs (`runbook runs`), the run
`--resume` continues, and the last known state of every step and host.

Only reads: `engine.journal` writes the records (its docstring is their contract). A crash can leave a
half-written last line; it is not committed, so it is left out here and cut off by `Journal.reopen`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import JournalError

JOURNAL_NAME = "journal.jsonl"
OUTCOMES = ("ok", "failed", "timed_out", "interrupted", "skipped", "unknown")
UNFINISHED = "unfinished"
UNREADABLE = "unreadable"


def reason(action: str, path: Path, error: OSError) -> str:
    """`cannot <action> <path>: <why>`, the one shape of every journal I/O error."""
    return f"cannot {action} {path}: {error.strerror or error}"


@dataclass(frozen=True)
class JournalScan:
    """What a journal holds; `torn_tail` says a crash left a half-written last line, ignored here."""

    records: list[dict[str, Any]]
    torn_tail: bool
    committed_bytes: int


def scan_journal(path: Path) -> JournalScan:
    """Read every committed record; a corrupt line before the last one raises, naming `file:line`."""
    *lines, tail = _read_bytes(path).split(b"\n")
    records: list[dict[str, Any]] = []
    committed = 0
    for number, line in enumerate(lines, 1):
        record = _parse(line)
        if record is None:
            if number == len(lines) and not tail:
                return JournalScan(records, True, committed)
            snippet = line[:80].decode("utf-8", "replace")
            raise JournalError(f"{path}:{number}: corrupt journal line (not a JSON object): {snippet}")
        records.append(record)
        committed += len(line) + 1
    return JournalScan(records, bool(tail), committed)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The committed records of a journal; see `scan_journal` for whether a torn last line was dropped."""
    return scan_journal(path).records


def _read_bytes(path: Path) -> bytes:
    """Read up to the size seen on opening: a consistent prefix even while a run is still appending."""
    try:
        with open(path, "rb") as file:
            return file.read(os.fstat(file.fileno()).st_size)
    except OSError as error:
        raise JournalError(reason("read journal", path, error)) from error


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


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
    status: str  # run-end's status ("ok", "failed", "interrupted", ...), "unfinished", or "unreadable"
    directory: Path
    problem: str | None = None  # why an "unreadable" journal cannot be read


def summarize_run(directory: Path) -> RunSummary | None:
    """Summarise one run directory; None if it has no header yet (a crash right after it was made)."""
    path = directory / JOURNAL_NAME
    records = read_journal(path) if path.exists() else []
    if not records:
        return None
    header, last = records[0], records[-1]
    if header.get("type") != "run":
        raise JournalError(f"{path}:1: the first record is not the run header")
    runbook: dict[str, Any] = header["runbook"] if isinstance(header.get("runbook"), dict) else {}
    ended = last.get("type") == "run-end"
    return RunSummary(
        run_id=str(header.get("run_id", directory.name)),
        runbook=str(runbook.get("name", "")),
        version=_optional_str(runbook.get("version")),
        sha256=_optional_str(runbook.get("sha256")),
        user=_optional_str(header.get("user")),
        started=str(header.get("time", "")),
        finished=_optional_str(last.get("time")) if ended else None,
        status=str(last.get("status", "failed")) if ended else UNFINISHED,
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
    runs_dir = state_dir / "runs"
    if not runs_dir.is_dir():
        return []
    summaries = [_summary_or_problem(directory) for directory in runs_dir.iterdir() if directory.is_dir()]
    matching = [s for s in summaries if s is not None and (runbook is None or s.runbook == runbook)]
    return sorted(matching, key=lambda s: (s.started or s.run_id, s.run_id), reverse=True)


def latest_unfinished(state_dir: Path, runbook_name: str) -> RunSummary | None:
    """The run `--resume` continues: the newest run of the runbook, unless it finished "ok".

    A failed or interrupted run is resumable as much as a crashed one (fix the cause, resume); an older run
    is not, once a newer one was started from scratch.
    """
    runs = list_runs(state_dir, runbook_name)
    return runs[0] if runs and runs[0].status != "ok" else None


@dataclass(frozen=True)
class RecordedOutcome:
    """The last known state of one step on one host, folded from the journal."""

    step: str
    host: str
    status: str  # one of OUTCOMES
    attempt: int
    exit_code: int | None


def fold_outcomes(records: list[dict[str, Any]]) -> dict[tuple[str, str], RecordedOutcome]:
    """The latest state of each (step, host), in record order: a later attempt overrides an earlier one.

    A start without a later end is "unknown": the command may or may not have had its effect, so resume asks.
    """
    folded: dict[tuple[str, str], RecordedOutcome] = {}
    for record in records:
        kind, step, host = record.get("type"), str(record.get("step")), str(record.get("host"))
        attempt = int(record.get("attempt") or 1)
        if kind == "step-start":
            folded[(step, host)] = RecordedOutcome(step, host, "unknown", attempt, None)
        elif kind == "step-end":
            status = str(record.get("status")).replace("-", "_")
            status = status if status in OUTCOMES else "unknown"
            folded[(step, host)] = RecordedOutcome(step, host, status, attempt, record.get("exit_code"))
        elif kind == "manual":
            status = "ok" if record.get("ok") else "failed"
            folded[(step, host)] = RecordedOutcome(step, host, status, attempt, None)
    return folded


def outcomes(records: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(step, host) -> "ok" | "failed" | "timed_out" | "interrupted" | "skipped" | "unknown"."""
    return {key: outcome.status for key, outcome in fold_outcomes(records).items()}
