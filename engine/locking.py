"""One run per runbook and state directory, enforced by an OS file lock on `<state_dir>/locks/<name>.lock`.

An `flock` belongs to the open file, so the kernel drops it when the holder dies, even by SIGKILL or a power
cut: there is no stale lock to clean up and no pid to check. The file's content only says who holds it, for
the refusal message; a leftover content from a dead holder is never trusted without trying the lock.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from engine.errors import JournalError, LockHeld
from engine.journal import safe_filename, timestamp

_TRIES = 3  # someone peeking with `holder()` holds the lock for microseconds; do not refuse a run for that
_RETRY_DELAY = 0.05


@dataclass(frozen=True)
class LockHolder:
    """Who runs the runbook, as the run that holds its lock wrote it down."""

    user: str
    host: str
    pid: int
    since: str
    run_id: str | None

    def describe(self) -> str:
        if not self.pid:
            return "another process (it has not written who it is yet)"
        run = f", run {self.run_id}" if self.run_id else ""
        return f"{self.user}@{self.host} (pid {self.pid}) since {self.since}{run}"


def lock_path(state_dir: Path, runbook_name: str) -> Path:
    return state_dir / "locks" / f"{safe_filename(runbook_name)}.lock"


class RunLock:
    """Held for the whole run; a context manager that acquires on entry and releases on exit."""

    def __init__(self, state_dir: Path, runbook_name: str, run_id: str | None = None) -> None:
        self.runbook_name = runbook_name
        self.run_id = run_id
        self.path = lock_path(state_dir, runbook_name)
        self.taken_over: LockHolder | None = None  # a holder that died without releasing (its content stayed)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write who holds it, or raise `LockHeld` saying who does."""
        if self._fd is not None:
            return
        fd = _open_lock_file(self.path)
        if not _try_lock(fd, fcntl.LOCK_EX):
            who = _read_holder(fd).describe()
            os.close(fd)
            raise LockHeld(f"runbook {self.runbook_name!r} is being run by {who}; lock file {self.path}")
        left = _read_holder(fd, tries=1)
        self.taken_over = (
            left if left.pid else None
        )  # `release` empties the file: only a dead holder leaves it
        me = LockHolder(_user(), this_host(), os.getpid(), timestamp(), self.run_id)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(me)).encode() + b"\n", 0)
        except OSError as error:
            os.close(fd)
            raise JournalError(f"cannot write lock file {self.path}: {error.strerror or error}") from error
        self._fd = fd

    def release(self) -> None:
        """Empty the file (so it names nobody) and unlock; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock itself is what matters, and closing releases it
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def holder(state_dir: Path, runbook_name: str) -> LockHolder | None:
    """Who holds the runbook's lock right now, or None if nobody does.

    The lock is tried, not just the file read: the file may still name a run that was killed. A holder that
    has not written its details yet is reported with user and host "unknown" and pid 0.
    """
    path = lock_path(state_dir, runbook_name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise JournalError(f"cannot read lock file {path}: {error.strerror or error}") from error
    try:
        if _try_lock(fd, fcntl.LOCK_SH, tries=1):
            return None  # closing the descriptor below releases our shared lock at once
        return _read_holder(fd)
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise JournalError(f"cannot create lock file {path}: {error.strerror or error}") from error


def _try_lock(fd: int, kind: int, tries: int = _TRIES) -> bool:
    for attempt in range(tries):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(_RETRY_DELAY)
    return False


def _read_holder(fd: int, tries: int = _TRIES) -> LockHolder:
    """The holder written in the file, waiting briefly for one that has just taken the lock to write it."""
    for attempt in range(tries):
        try:
            data = json.loads(os.pread(fd, 4096, 0))
            run_id = None if data.get("run_id") is None else str(data["run_id"])
            return LockHolder(
                str(data["user"]), str(data["host"]), int(data["pid"]), str(data["since"]), run_id
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            if attempt + 1 < tries:
                time.sleep(_RETRY_DELAY)
    return LockHolder("unknown", "unknown", 0, "", None)


def this_host() -> str:
    """This machine's name, as `socket.gethostname()` gives it (both read uname's node name) without importing
    socket, which a run of local steps would load for this alone (~1.5 ms of its start)."""
    return os.uname().nodename


def _user() -> str:
    """The login name, or the uid where there is none (a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
