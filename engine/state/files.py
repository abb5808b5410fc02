"""The file backend: runs under a state directory, locked by an flock per runbook (today's behaviour).

`<state_dir>/runs/<run_id>/` holds `journal.jsonl` (`engine.journal`), the output files and `runbook.yml`,
the runbook as it was run; `<state_dir>/locks/<runbook>.lock` is the runbook's lock (`engine.locking`); the
listing of runs is `engine.runs`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import runs

if TYPE_CHECKING:
    from engine.approvals.signatures import SignatureDesk
from engine.errors import JournalError
from engine.journal import JOURNAL_NAME, Journal, OutputFile, read_journal, run_directory
from engine.locking import RunLock, holder
from engine.records import RunHeader, parse
from engine.runfilter import RunFilter, started
from engine.state.base import LockHolder, RunSummary, TakeOver

RUNBOOK_COPY = "runbook.yml"


class FileWriter:
    """A run's journal file and its runbook's flock, released together."""

    def __init__(self, lock: RunLock, journal: Journal) -> None:
        self.run_id = journal.run_id
        self.where = f"journal {journal.path}"
        self.taken_over: LockHolder | None = lock.taken_over
        self.journal, self._lock = journal, lock

    def append(self, record: Mapping[str, Any]) -> None:
        self.journal.append(record)

    def output_file(self, step_id: str, host: str) -> OutputFile:
        return self.journal.output_file(step_id, host)

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            self._lock.release()


class FileState:
    """Runs kept in `state_dir` (`--state-dir`, `$RUNBOOK_STATE_DIR`, `./.runbook`)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.location = str(state_dir)

    def start(self, runbook_name: str, header: Mapping[str, Any], runbook_text: str) -> FileWriter:
        parsed = parse(header)
        assert isinstance(parsed, RunHeader), "start takes a run header (records.run)"
        lock = self._locked(runbook_name, parsed.run_id)
        try:
            journal = Journal.create(self.state_dir, header, parsed.run_id)
        except BaseException:
            lock.release()
            raise
        writer = FileWriter(lock, journal)
        try:
            (journal.directory / RUNBOOK_COPY).write_text(runbook_text, encoding="utf-8")
        except OSError as error:
            writer.close()
            raise JournalError(
                f"cannot keep a copy of the runbook in {journal.directory}: {error.strerror or error}"
            ) from error
        return writer

    def resume(self, runbook_name: str, run_id: str, *, take_over: TakeOver | None = None) -> FileWriter:
        """`take_over` is never asked: an flock is free the moment its holder dies, and a live one stays."""
        lock = self._locked(runbook_name, run_id)
        try:
            return FileWriter(lock, Journal.reopen(self.state_dir, run_id))
        except BaseException:
            lock.release()
            raise

    def _locked(self, runbook_name: str, run_id: str) -> RunLock:
        lock = RunLock(self.state_dir, runbook_name, run_id)
        lock.acquire()
        return lock

    def holder(self, runbook_name: str) -> LockHolder | None:
        return holder(self.state_dir, runbook_name)

    def directory(self, run_id: str) -> Path:
        """The run's directory (files only): its journal, output files and runbook copy."""
        return run_directory(self.state_dir, run_id)

    def records(self, run_id: str) -> list[dict[str, Any]] | None:
        path = self.directory(run_id) / JOURNAL_NAME
        return read_journal(path) if path.is_file() else None

    def runs(self, runbook: str | None = None, where: RunFilter | None = None) -> list[RunSummary]:
        if where is not None and where.run_id is not None:  # one run: read its journal alone
            one = runs.summarize_run(run_directory(self.state_dir, where.run_id))
            found = [one] if one is not None and runbook in (None, one.runbook) else []
        else:
            found = runs.list_runs(self.state_dir, runbook)
        return found if where is None else [run for run in found if where.matches(run)]

    def prune(self, older_than: timedelta) -> int:
        """Delete old run directories (their journals and output files), never a run whose lock is held."""
        cutoff = datetime.now(UTC) - older_than
        old = [run for run in runs.list_runs(self.state_dir) if (started(run) or cutoff) < cutoff]
        gone = [run for run in old if not self._running(run)]
        for run in gone:
            shutil.rmtree(run_directory(self.state_dir, run.run_id))
        return len(gone)

    def _running(self, run: RunSummary) -> bool:
        held = holder(self.state_dir, run.runbook) if run.runbook else None
        return held is not None and held.run_id == run.run_id

    def newest(self, runbook: str, excluding: str | None = None) -> RunSummary | None:
        return runs.newest(self.state_dir, runbook, excluding)

    def runbook_copy(self, run_id: str) -> str | None:
        saved = self.directory(run_id) / RUNBOOK_COPY
        return saved.read_text(encoding="utf-8") if saved.is_file() else None

    def approvals(self) -> SignatureDesk:
        from engine.approvals.signatures import SignatureDesk

        return SignatureDesk(self.state_dir / "approvals")

    def close(self) -> None:
        """Nothing to release: every file belongs to a writer."""
