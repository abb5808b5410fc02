"""The run journal: an append-only JSON-lines record of a run, every line on disk before `append` returns.

A run lives in `run_directory(state_dir, run_id)`, `<state_dir>/runs/<run_id>/`: `journal.jsonl` plus one
output file per step and host (`<step>@<host>.log`). The journal is what `--resume` trusts, so a record is
on disk before `append` returns (lines appended at once share one fsync: group commit), and a journal that
cannot be written stops the run (`JournalError`)
rather than letting it go on unrecorded.
Nothing here masks: callers pass text already masked by `engine.masking`.

The records themselves (their keys, builders and reading types) are `engine.records`'s; this module writes
and reads lines, whatever they hold.

A line is committed once its newline is on disk: a last line without one (or that does not parse) is what a
crash mid-write leaves, so `scan_journal` ignores it and `Journal.reopen` cuts it off before appending.
Folding records into a run's history is `engine.history`'s job; the file state backend is `engine.state.files`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from engine.errors import JournalError

JOURNAL_NAME = "journal.jsonl"


# -- where runs live --------------------------------------------------------------------------------


def default_state_dir(cwd: Path) -> Path:
    """`$RUNBOOK_STATE_DIR` (relative to `cwd` if relative) or `cwd/.runbook`."""
    configured = os.environ.get("RUNBOOK_STATE_DIR")
    return cwd / Path(configured).expanduser() if configured else cwd / ".runbook"


def runs_directory(state_dir: Path) -> Path:
    """Where every run of a state directory lives."""
    return state_dir / "runs"


def run_directory(state_dir: Path, run_id: str) -> Path:
    """One run's directory: its journal, its output files, the copy of its runbook."""
    return runs_directory(state_dir) / run_id


def journal_path(state_dir: Path, run_id: str) -> Path:
    return run_directory(state_dir, run_id) / JOURNAL_NAME


def timestamp(now: datetime | None = None) -> str:
    """UTC ISO 8601 with milliseconds and a "Z", the one time format of journals, output files and locks."""
    moment = _utc(now or datetime.now(UTC))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(now: datetime | None = None) -> str:
    """`20261126T113722Z-1a2b3c`: sorts by start time; the random part keeps runs in the same second apart."""
    return f"{_utc(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (not local time), so ids do not depend on the machine's zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def safe_filename(name: str) -> str:
    """`name` made safe as a file name; a short hash keeps names that differ only in unsafe characters apart."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "_"
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def _json_default(value: object) -> object:
    """Paths, datetimes and enums are what records naturally hold; anything else is a bug and raises."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} to the journal")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -- reading back -----------------------------------------------------------------------------------


def _reason(action: str, path: Path, error: OSError) -> str:
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
        raise JournalError(_reason("read journal", path, error)) from error


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# -- writing ----------------------------------------------------------------------------------------


class OutputFile:
    """The full output of one step on one host, one line per output line: `<time> [stdout] <line>`.

    Flushed per line (unbuffered writes) so a crash keeps what was printed; fsynced once, on close, because
    the journal's step-end record, not this file, is what resume relies on.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise JournalError(_reason("open output file", path, error)) from error

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write_line(self, stream: str, line: str) -> None:
        """Write one line of `stream` ("stdout", "stderr"); embedded newlines become separate lines."""
        prefix = f"{timestamp()} [{stream}] "
        text = "".join(prefix + part + "\n" for part in line.rstrip("\r\n").split("\n"))
        with self._lock:
            if self._fd is None:
                raise JournalError(f"cannot write {self.path}: it is closed")
            try:
                _write_all(self._fd, text.encode("utf-8", "replace"))
            except OSError as error:
                raise JournalError(_reason("write output file", self.path, error)) from error

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                os.fsync(fd)
            except OSError as error:
                raise JournalError(_reason("sync output file", self.path, error)) from error
            finally:
                os.close(fd)


class Journal:
    """Appends records to one run's `journal.jsonl`; thread-safe, and done for good after the first failure."""

    def __init__(self, run_id: str, directory: Path, fd: int) -> None:
        self.run_id = run_id
        self.directory = directory
        self.path = directory / JOURNAL_NAME
        self._fd: int | None = fd
        self._failure: str | None = None
        self._lock = threading.Lock()  # writing a line (and the table of output files)
        self._sync_lock = threading.Lock()  # one fsync at a time, for every line written before it began
        self._written = 0  # lines written so far
        self._synced = 0  # lines known to be on disk
        self._outputs: dict[tuple[str, str], OutputFile] = {}

    @classmethod
    def create(cls, state_dir: Path, header: Mapping[str, Any], run_id: str) -> Journal:
        """Make the run directory and write the `run` header record (`records.run`)."""
        directory = run_directory(state_dir, run_id)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            directory.mkdir(parents=True)
            journal = cls(run_id, directory, os.open(directory / JOURNAL_NAME, flags, 0o644))
        except OSError as error:
            raise JournalError(_reason("create run directory", directory, error)) from error
        try:
            journal.append(header)
            _fsync_directory(directory)
        except JournalError:
            journal.close()
            raise
        return journal

    @classmethod
    def reopen(cls, state_dir: Path, run_id: str) -> Journal:
        """Append to an existing run's journal (for `--resume`), first cutting off a line torn by a crash."""
        directory = run_directory(state_dir, run_id)
        path = directory / JOURNAL_NAME
        scan = scan_journal(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as error:
            raise JournalError(_reason("reopen journal", path, error)) from error
        if scan.torn_tail:
            try:
                os.ftruncate(fd, scan.committed_bytes)
            except OSError as error:
                os.close(fd)
                raise JournalError(_reason("cut the torn last line of", path, error)) from error
        return cls(run_id, directory, fd)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write `record` as one line and return once it is on disk; on any OS error, raise and refuse every
        later append.

        Group commit: hosts finishing at once each write their line, then one fsync makes all of them
        durable — the first thread in syncs everything written so far, and the threads whose lines that
        covered return without an fsync of their own. Every line is still on disk before its `append`
        returns, but N hosts cost about one fsync's wait, not N of them in a row.
        """
        stamped = dict(record)
        stamped.setdefault("time", timestamp())
        data = (json.dumps(stamped, ensure_ascii=False, default=_json_default) + "\n").encode(
            "utf-8", "replace"
        )
        with self._lock:
            fd = self._usable()
            try:
                _write_all(fd, data)
            except OSError as error:
                self._failure = _reason("write journal", self.path, error)
                raise JournalError(self._failure) from error
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:
                return  # an fsync that began after our write has finished
            with self._lock:
                fd, upto = self._usable(), self._written
            try:
                os.fsync(fd)
                if os.fstat(fd).st_nlink == 0:
                    raise FileNotFoundError(2, "the journal was deleted while the run was writing it")
            except OSError as error:
                self._failure = _reason("write journal", self.path, error)
                raise JournalError(self._failure) from error
            self._synced = upto

    def _usable(self) -> int:
        """The journal's descriptor, unless it failed or was closed (then JournalError); under `_lock`."""
        if self._failure or self._fd is None:
            raise JournalError(self._failure or f"cannot write {self.path}: the journal is closed")
        return self._fd

    def output_file(self, step_id: str, host: str) -> OutputFile:
        """The output file of `step_id` on `host`, opened on first use (again after a close, for a re-run)."""
        key = (step_id, host)
        with self._lock:
            output = self._outputs.get(key)
            if output is None or output.closed:
                name = f"{safe_filename(step_id)}@{safe_filename(host)}.log"
                output = self._outputs[key] = OutputFile(self.directory / name)
            return output

    def close(self) -> None:
        """Close every output file and the journal; the first error is raised once everything is closed."""
        errors: list[JournalError] = []
        with self._sync_lock, self._lock:  # not under an fsync in flight
            outputs, self._outputs = list(self._outputs.values()), {}
            fd, self._fd = self._fd, None
        for output in outputs:
            try:
                output.close()
            except JournalError as error:
                errors.append(error)
        if fd is not None:
            os.close(fd)
        if errors:
            raise errors[0]

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fsync_directory(directory: Path) -> None:
    """Make the new journal's directory entry durable too, or a crash could lose the whole run."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise JournalError(_reason("sync run directory", directory, error)) from error
