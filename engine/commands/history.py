"""`runbook runs [RUN_ID]`: the run history, read from the journals; one run step by step, host by host.

The list says who ran what, when, and how it ended ("running" when the run's lock is held right now,
"unfinished" when it ended without a word: a crash, a kill, a power cut — resume it). One run shows its
header, then every step and host with its last known outcome, then the events a person caused:
confirmations, manual answers, interruptions, resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.checklist.filling import read_run
from engine.errors import UsageError
from engine.flags import option
from engine.journal import JOURNAL_NAME, Record, default_state_dir, read_journal, runs_directory
from engine.locking import holder
from engine.runs import UNFINISHED, RunSummary, fold_outcomes, list_runs

_PIPE_WIDTH = 160
_EVENTS = (Record.CONFIRMATION, Record.MANUAL, Record.RESUMED, Record.INTERRUPTED, Record.RUN_END)


FORMAT_VERSION = 1  # of the JSON documents: bumped when a key changes meaning or goes away


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


@dataclass(frozen=True, kw_only=True)
class RunsOptions:
    run_id: str | None = option(
        None,
        help="Show this run step by step (default: list every run); a unique prefix is enough.",
        metavar="RUN_ID",
        also_positional=True,
    )
    state_dir: str | None = option(
        None, help="Where journals live (default: $RUNBOOK_STATE_DIR or ./.runbook).", metavar="DIR"
    )
    format: Format = option(
        Format.TEXT,
        help="text (default), json (one versioned document) or html (one run: a page with its timeline).",
    )


def main(chosen: RunsOptions) -> int:
    state_dir, run_id, format = chosen.state_dir, chosen.run_id, chosen.format
    state = Path(state_dir) if state_dir else default_state_dir(Path.cwd())
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # piped or captured: whole rows for grep, not columns squeezed to 80
        console.width = max(console.width, _PIPE_WIDTH)
    if not isinstance(run_id, str) or not run_id:
        if format == "html":
            raise UsageError("--format html shows one run: give its id (--run-id RUN_ID)")
        if format == "json":
            print(json.dumps(list_document(state), indent=2, ensure_ascii=False))
        else:
            console.print(_list(state))
        return 0
    directory = _find(state, run_id)
    records = read_journal(directory / JOURNAL_NAME)
    if not records or records[0].get("type") != Record.RUN:
        raise UsageError(f"run {directory.name}: its journal has no header (the run died as it began)")
    if format == "json":
        print(json.dumps(run_document(records, _status(state, records)), indent=2, ensure_ascii=False))
        return 0
    if format == "html":
        from engine.checklist.html import render_run

        print(render_run(read_run(records)), end="")
        return 0
    for line in _header(records, _status(state, records)):
        console.print(escape(line))
    console.print(_steps(records))
    console.print(_events(records))
    return 0


def _list(state: Path) -> Table:
    table = Table(title=f"Runs in {state}", title_justify="left")
    for column in ("run", "runbook", "version", "who", "started", "status"):
        table.add_column(column, no_wrap=column != "status", overflow="fold")
    for run in list_runs(state):
        status = _live(state, run)
        table.add_row(
            *(
                escape(cell)
                for cell in (run.run_id, run.runbook, run.version or "", run.user or "", run.started, status)
            )
        )
    return table


def list_document(state: Path) -> dict[str, Any]:
    """`runs --format json`: every run, newest first, as the list shows it."""
    return {
        "format": "runbook-runs",
        "format_version": FORMAT_VERSION,
        "state_dir": str(state),
        "runs": [
            {
                "run_id": run.run_id,
                "runbook": run.runbook,
                "version": run.version,
                "sha256": run.sha256,
                "user": run.user,
                "started": run.started,
                "finished": run.finished,
                "status": _live(state, run),
            }
            for run in list_runs(state)
        ],
    }


def run_document(records: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """`runs --run-id ID --format json`: the run's header, every step on every host (its last known
    outcome and times), and the events a person caused, as journaled (secrets are masked there)."""
    run = read_run(records)
    head = records[0]
    return {
        "format": "runbook-run",
        "format_version": FORMAT_VERSION,
        "run": {
            "run_id": run.run_id,
            "runbook": dict(run.runbook),
            "variables": dict(run.variables),
            "platform": run.platform,
            "user": run.user,
            "hostname": run.hostname,
            "engine_version": head.get("engine_version"),
            "started": run.started,
            "ended": run.ended,
            "status": run.status,
            "exit_code": run.exit_code,
            "state": status,
        },
        "steps": [
            {
                "step": step,
                "host": host,
                "status": str(outcome.status),
                "exit_code": outcome.exit_code,
                "attempt": outcome.attempt,
                "started": outcome.started,
                "ended": outcome.ended,
                "duration": outcome.duration,
            }
            for (step, host), outcome in run.outcomes.items()
        ],
        "events": [r for r in records[1:] if r.get("type") in _EVENTS],
    }


def _live(state: Path, run: RunSummary) -> str:
    """An unfinished run whose lock is held right now is still running; else it died (resume it)."""
    if run.problem:
        return f"{run.status}: {run.problem}"
    if run.status != UNFINISHED:
        return run.status
    who = holder(state, run.runbook)
    return f"running (pid {who.pid})" if who is not None and who.run_id == run.run_id else UNFINISHED


def _find(state: Path, run_id: str) -> Path:
    """The run directory named by `run_id`, or by a unique beginning of it."""
    runs = runs_directory(state)
    if (runs / run_id / JOURNAL_NAME).is_file():
        return runs / run_id
    matches = (
        sorted(p for p in runs.glob(f"{run_id}*") if (p / JOURNAL_NAME).is_file()) if runs.is_dir() else []
    )
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{run_id!r} names {len(matches)} runs: {', '.join(p.name for p in matches)}")
    raise UsageError(f"no run {run_id!r} in {state} (`runs` lists them)")


def _status(state: Path, records: list[dict[str, Any]]) -> str:
    last = records[-1]
    if last.get("type") == Record.RUN_END:
        return f"{last.get('status')} (exit {last.get('exit_code')}), at {last.get('time')}"
    book = records[0].get("runbook") or {}
    who = holder(state, str(book.get("name")))
    if who is not None and who.run_id == records[0].get("run_id"):
        return f"running: {who.describe()}"
    return "unfinished: it ended without a word (killed, crashed); --resume continues it"


def _header(records: list[dict[str, Any]], status: str) -> list[str]:
    head = records[0]
    book = head.get("runbook") or {}
    values = ", ".join(f"{name}={value}" for name, value in (head.get("variables") or {}).items()) or "none"
    sessions = 1 + sum(1 for r in records if r.get("type") == Record.RESUMED)
    what = (
        f"run {head.get('run_id')}: {book.get('name')} {book.get('version')} "
        f"(sha256 {str(book.get('sha256', ''))[:12]}…, {book.get('path')})"
    )
    who = (
        f"started {head.get('time')} by {head.get('user')}@{head.get('hostname')} (pid {head.get('pid')}), "
        f"platform {head.get('platform')}, engine {head.get('engine_version')}; {sessions} session(s)"
    )
    return [what, who, f"variables: {values}", f"status: {status}"]


def _steps(records: list[dict[str, Any]]) -> Table:
    """One row per step and host, in the order they first started, with the last known outcome."""
    table = Table(title="Steps, host by host", title_justify="left")
    for column in ("step", "host", "status", "exit", "starts", "duration", "last record", "detail"):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    last: dict[tuple[str, str], dict[str, Any]] = {}
    starts: dict[tuple[str, str], int] = {}
    for record in records:
        if record.get("type") in (Record.STEP_START, Record.STEP_END, Record.MANUAL):
            key = (str(record.get("step")), str(record.get("host")))
            last[key] = record
            starts[key] = starts.get(key, 0) + (record.get("type") == Record.STEP_START)
    for key, outcome in fold_outcomes(records).items():
        record = last[key]
        exit_code = "" if outcome.exit_code is None else str(outcome.exit_code)
        duration = f"{record['duration']:.1f}s" if isinstance(record.get("duration"), (int, float)) else ""
        detail = str(record.get("reason") or "") if record.get("type") == Record.STEP_END else ""
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    key[0],
                    key[1],
                    outcome.status,
                    exit_code,
                    str(starts[key]),
                    duration,
                    str(record.get("time", ""))[11:23],
                    detail,
                )
            )
        )
    return table


def _events(records: list[dict[str, Any]]) -> Table:
    table = Table(title="Events", title_justify="left")
    for column in ("time", "event", "step", "host", "detail"):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for record in records[1:]:
        if record.get("type") in _EVENTS:
            table.add_row(*(escape(str(cell)) for cell in _event(record)))
    return table


def _event(record: dict[str, Any]) -> tuple[object, ...]:
    kind = record.get("type")
    time = str(record.get("time", ""))[11:23]
    step, host = record.get("step") or "", record.get("host") or ""
    if kind == Record.CONFIRMATION:
        answer = f"{record.get('answer')!r} by {record.get('user')} ({record.get('by')})"
        return time, kind, step, host, f"{answer}: {record.get('question')}"
    if kind == Record.MANUAL:
        expected = f", expected {record.get('expected')!r}" if record.get("expected") is not None else ""
        verdict = "ok" if record.get("ok") else "not ok"
        answer = f"{record.get('answer')!r} by {record.get('user')} ({record.get('by')})"
        return time, kind, step, host, f"{answer}{expected}: {verdict}"
    if kind == Record.RESUMED:
        return time, kind, "", "", f"by {record.get('user')} (pid {record.get('pid')})"
    if kind == Record.INTERRUPTED:
        return time, kind, "", "", str(record.get("signal"))
    if kind == Record.RUN_END:
        return time, f"end: {record.get('status')}", "", "", f"exit {record.get('exit_code')}"
    return time, kind, step, host, str(record.get("note", ""))
