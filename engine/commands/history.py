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

from engine import runfilter
from engine.errors import UsageError
from engine.flags import option
from engine.history import Event, RunHistory, fold, has_header
from engine.records import (
    ApprovalDecision,
    ApprovalRequest,
    Confirmation,
    Interrupted,
    Manual,
    Resumed,
    RunEnd,
)
from engine.runfilter import RunFilter
from engine.state import RunSummary, StateBackend, open_state, rehearsals
from engine.state.base import ABANDONED, UNFINISHED
from engine.state.options import FROM_ENVIRONMENT, StateOptions

_PIPE_WIDTH = 160


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
    runbook: str | None = option(None, help="List only this runbook's runs (by name).", metavar="NAME")
    user: str | None = option(None, help="List only the runs of this login (or OS user).", metavar="USER")
    since: str | None = option(
        None,
        help="List only runs started since: a date or time (2026-12-01), or an age (7d, 12h).",
        metavar="WHEN",
    )
    status: str | None = option(
        None,
        help="List only runs in this state: ok, failed, declined, interrupted, running, unfinished, abandoned.",
        metavar="STATUS",
    )
    older_than: str | None = option(
        None,
        help="`runs prune --older-than AGE`: delete the runs started longer ago (90d, 12h, 2w).",
        metavar="AGE",
    )


PRUNE = "prune"
"""`runs prune --older-than AGE`: the word in place of a run id."""


def main(chosen: RunsOptions, where: StateOptions = FROM_ENVIRONMENT) -> int:
    state = open_state(where.state, Path.cwd(), chosen.state_dir)
    try:
        if chosen.run_id == PRUNE or chosen.older_than is not None:
            return _prune(state, chosen)
        rehearsed = rehearsals(Path.cwd(), chosen.state_dir)
        return _show(state, rehearsed, chosen.run_id, chosen.format, _filter(chosen))
    finally:
        state.close()


def _filter(chosen: RunsOptions) -> RunFilter:
    since = runfilter.moment(chosen.since) if chosen.since is not None else None
    return RunFilter(runbook=chosen.runbook, user=chosen.user, since=since, status=chosen.status)


def _prune(state: StateBackend, chosen: RunsOptions) -> int:
    if chosen.run_id != PRUNE or chosen.older_than is None:
        raise UsageError("prune old runs with: runs prune --older-than AGE (90d, 12h, 2w)")
    gone = state.prune(runfilter.age(chosen.older_than))
    print(
        f"pruned {gone} run{'s' if gone != 1 else ''} started more than {chosen.older_than} ago from {state.location}"
    )
    return 0


def _show(
    state: StateBackend, rehearsed: StateBackend, run_id: str | None, format: str, where: RunFilter
) -> int:
    """The list of runs (then the rehearsals', kept apart: never resumed by `run`), or one run of either;
    the filters choose from both lists."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # piped or captured: whole rows for grep, not columns squeezed to 80
        console.width = max(console.width, _PIPE_WIDTH)
    if not isinstance(run_id, str) or not run_id:
        if format == "html":
            raise UsageError("--format html shows one run: give its id (--run-id RUN_ID)")
        if format == "json":
            listed = {**list_document(state, where), "rehearsals": list_document(rehearsed, where)["runs"]}
            print(json.dumps(listed, indent=2, ensure_ascii=False))
        else:
            console.print(_list(state, where))
            if rehearsed.runs(where=where):
                title = "Rehearsals (runbook rehearse: nothing was executed) in"
                console.print(_list(rehearsed, where, title))
        return 0
    state, found = _found(state, rehearsed, run_id)
    records = state.records(found) or []
    if not has_header(records):
        raise UsageError(f"run {found}: its journal has no header (the run died as it began)")
    run = fold(records)
    if format == "json":
        print(json.dumps(run_document(run, _status(state, run)), indent=2, ensure_ascii=False))
        return 0
    if format == "html":
        from engine.checklist.html import render_run

        print(render_run(run), end="")
        return 0
    for line in _header(run, _status(state, run)):
        console.print(escape(line))
    console.print(_steps(run))
    console.print(_events(run))
    return 0


def _list(state: StateBackend, where: RunFilter, title: str = "Runs in") -> Table:
    table = Table(title=f"{title} {state.location}", title_justify="left")
    for column in ("run", "runbook", "version", "who", "started", "status"):
        table.add_column(column, no_wrap=column != "status", overflow="fold")
    for run in state.runs(where=where):
        status = _live(state, run)
        table.add_row(
            *(
                escape(cell)
                for cell in (run.run_id, run.runbook, run.version or "", run.user or "", run.started, status)
            )
        )
    return table


def list_document(state: StateBackend, where: RunFilter | None = None) -> dict[str, Any]:
    """`runs --format json`: every run, newest first, as the list shows it."""
    return {
        "format": "runbook-runs",
        "format_version": FORMAT_VERSION,
        "state_dir": state.location,
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
            for run in state.runs(where=where)
        ],
    }


def run_document(run: RunHistory, status: str) -> dict[str, Any]:
    """`runs --run-id ID --format json`: the run's header, every step on every host (its last known
    outcome and times), and the events a person caused, as journaled (secrets are masked there)."""
    book = run.runbook
    return {
        "format": "runbook-run",
        "format_version": FORMAT_VERSION,
        "run": {
            "run_id": run.run_id,
            "runbook": {"name": book.name, "version": book.version, "sha256": book.sha256, "path": book.path},
            "variables": dict(run.variables),
            "platform": run.platform,
            "user": run.user,
            "hostname": run.hostname,
            "engine_version": run.header.engine_version,
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
        "events": [dict(event.raw) for event in run.events],
    }


def _live(state: StateBackend, run: RunSummary) -> str:
    """An unfinished run whose lock is held right now is still running; else it died (resume it)."""
    if run.problem:
        return f"{run.status}: {run.problem}"
    if run.status != UNFINISHED:
        return run.status
    who = state.holder(run.runbook)
    return f"running (pid {who.pid})" if who is not None and who.run_id == run.run_id else UNFINISHED


def _found(state: StateBackend, rehearsed: StateBackend, run_id: str) -> tuple[StateBackend, str]:
    """The state the run is in (the real runs', or else the rehearsals') and its whole id."""
    try:
        return state, _find(state, run_id)
    except UsageError as missing:
        try:
            return rehearsed, _find(rehearsed, run_id)
        except UsageError:
            raise missing from None


def _find(state: StateBackend, run_id: str) -> str:
    """The run named by `run_id`, or by a unique beginning of it."""
    if state.records(run_id) is not None:
        return run_id
    matches = sorted(r.run_id for r in state.runs() if r.run_id.startswith(run_id))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{run_id!r} names {len(matches)} runs: {', '.join(matches)}")
    raise UsageError(f"no run {run_id!r} in {state.location} (`runs` lists them)")


def _status(state: StateBackend, run: RunHistory) -> str:
    if run.end is not None:
        return f"{run.end.status} (exit {run.end.exit_code}), at {run.end.time}"
    who = state.holder(run.runbook.name)
    if who is not None and who.run_id == run.run_id:
        return f"running: {who.describe()}"
    listed = state.runs(where=RunFilter(run_id=run.run_id))
    if listed and listed[0].status == ABANDONED:  # the shared state tells a vanished holder apart
        return f"{ABANDONED}: its holder vanished (no run-end, no live lock); --resume continues it"
    return "unfinished: it ended without a word (killed, crashed); --resume continues it"


def _header(run: RunHistory, status: str) -> list[str]:
    head, book = run.header, run.runbook
    values = ", ".join(f"{name}={value}" for name, value in run.variables.items()) or "none"
    what = f"run {run.run_id}: {book.name} {book.version} (sha256 {book.sha256[:12]}…, {book.path})"
    who = (
        f"started {head.time} by {head.user}@{head.hostname} (pid {head.pid}), "
        f"platform {head.platform}, engine {head.engine_version}; {run.sessions} session(s)"
    )
    return [what, who, f"variables: {values}", f"status: {status}"]


def _steps(run: RunHistory) -> Table:
    """One row per step and host, in the order they first started, with the last known outcome."""
    table = Table(title="Steps, host by host", title_justify="left")
    for column in ("step", "host", "status", "exit", "starts", "duration", "last record", "detail"):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for (step, host), found in run.hosts.items():
        latest = found.latest
        exit_code = "" if latest.exit_code is None else str(latest.exit_code)
        duration = "" if latest.duration is None else f"{latest.duration:.1f}s"
        starts = sum(1 for attempt in found.attempts if attempt.started is not None)
        last = latest.ended or latest.started or ""
        cells = (
            step,
            host,
            latest.status.label,  # as the run's summary words it; JSON keeps the journal's spelling
            exit_code,
            str(starts),
            duration,
            last[11:23],
            latest.outcome.reason,
        )
        table.add_row(*(escape(cell) for cell in cells))
    return table


def _events(run: RunHistory) -> Table:
    table = Table(title="Events", title_justify="left")
    for column in ("time", "event", "step", "host", "detail"):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for event in run.events:
        table.add_row(*(escape(str(cell)) for cell in _event(event)))
    return table


def _event(event: Event) -> tuple[str, ...]:
    record = event.record
    time = record.time[11:23]
    if isinstance(record, Confirmation):
        answer = f"{record.answer!r} by {record.user} ({record.by})"
        kind = "confirmation"
        return time, kind, record.step or "", record.host or "", f"{answer}: {record.question}"
    if isinstance(record, Manual):
        expected = f", expected {record.expected!r}" if record.expected is not None else ""
        verdict = "ok" if record.ok else "not ok"
        answer = f"{record.answer!r} by {record.user} ({record.by})"
        return time, "manual", record.step, record.host, f"{answer}{expected}: {verdict}"
    if isinstance(record, Resumed):
        return time, "resumed", "", "", f"by {record.user} (pid {record.pid})"
    if isinstance(record, Interrupted):
        return time, "interrupted", "", "", record.signal
    if isinstance(record, ApprovalRequest):
        who = f"from {', '.join(record.from_)}" if record.from_ else "from any operator"
        detail = f"{record.required} asked by {record.requester} {who}, document sha256 {record.sha256}"
        return time, "approval asked", record.step, "", detail
    if isinstance(record, ApprovalDecision):
        said = f": {record.comment!r}" if record.comment else ""
        detail = f"by {record.approver} at {record.given} ({record.proof}), sha256 {record.sha256}{said}"
        return time, f"approval: {record.verdict}", record.step, "", detail
    assert isinstance(record, RunEnd)
    return time, f"end: {record.status}", "", "", f"exit {record.exit_code}"
