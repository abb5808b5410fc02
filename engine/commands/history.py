"""`runbook runs [RUN_ID]`: the run history, read from the journals; one run step by step."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.errors import UsageError
from engine.journal import JOURNAL_NAME, default_state_dir, list_runs, read_journal


def main(state_dir: str | None, run_id: str | None) -> int:
    state = Path(state_dir) if state_dir else default_state_dir(Path.cwd())
    console = Console(highlight=False, soft_wrap=True)
    if run_id is None:
        table = Table("run", "runbook", "version", "who", "started", "status", title=f"Runs in {state}")
        for run in list_runs(state):
            table.add_row(run.run_id, run.runbook, run.version or "", run.user or "", run.started, run.status)
        console.print(table)
        return 0
    path = state / "runs" / run_id / JOURNAL_NAME
    if not path.is_file():
        raise UsageError(f"no run {run_id!r} in {state}")
    records = read_journal(path)
    header = records[0]
    book = header.get("runbook", {})
    console.print(f"run {run_id}: {book.get('name')} {book.get('version')} by {header.get('user')}"
                  f"@{header.get('hostname')}, started {header.get('time')}")
    table = Table("time", "step", "host", "event", "detail")
    for record in records[1:]:
        table.add_row(*(escape(str(cell)) for cell in _row(record)))
    console.print(table)
    return 0


def _row(record: dict[str, object]) -> tuple[object, ...]:
    kind = record.get("type")
    time = str(record.get("time", ""))[11:23]
    step, host = record.get("step") or "", record.get("host") or ""
    if kind == "step-end":
        detail = f"exit {record.get('exit_code')}, {record.get('duration')}s" + (
            f", {record.get('reason')}" if record.get("reason") else "")
        return time, step, host, record.get("status"), detail
    if kind == "step-start":
        return time, step, host, "start", f"attempt {record.get('attempt')}"
    if kind in ("manual", "confirmation"):
        return time, step, host, kind, f"{record.get('answer')!r} by {record.get('user')} ({record.get('by')})"
    if kind == "run-end":
        return time, "", "", f"end: {record.get('status')}", f"exit {record.get('exit_code')}"
    return time, step, host, kind, ""
