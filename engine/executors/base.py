"""The one executor interface, its `Result`, and the plumbing both implementations share.

Everything here is paramiko-free on purpose: `runbook validate` imports this package and must stay fast, so
the SSH *values* (`SSHTarget`, `SSHOptions`) live here and only `ssh.py` touches paramiko.
"""

from __future__ import annotations

import abc
import codecs
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

from engine.errors import PreflightFailed

OutputCallback = Callable[[str, str], None]
"""(stream "stdout"|"stderr", line without its newline); called from reader threads as lines arrive."""

KILL_GRACE = 2.0
"""Seconds a killed command gets between SIGTERM and SIGKILL (nox uses the same staged shutdown)."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Result:
    """What one command did on one host; `command` is the script as written, never a secret value."""

    command: str
    host: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.interrupted

    def tail(self, stream: str = "stdout", lines: int = 10) -> str:
        """The last `lines` lines of a stream: what a failure report shows without drowning the reader."""
        text = self.stdout if stream == "stdout" else self.stderr
        return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if lines > 0 else ""


@dataclass(frozen=True)
class SSHTarget:
    """A host as written in the runbook; `None` fields are filled from ~/.ssh/config by `ssh.resolve()`."""

    name: str
    hostname: str | None = None
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    proxy_jump: str | None = None


@dataclass(frozen=True)
class SSHOptions:
    """Run-wide SSH settings; paths keep their `~` so it is expanded against $HOME when used."""

    known_hosts: str = "~/.ssh/known_hosts"
    ssh_config: str = "~/.ssh/config"
    trust_new_keys: bool = False
    connect_timeout: float = 10.0
    banner_timeout: float = 15.0
    auth_timeout: float = 15.0
    keepalive: int = 15


def check_env_names(*mappings: Mapping[str, str] | None) -> None:
    """Refuse names a shell cannot export: they would be silently dropped or, remotely, be code."""
    for mapping in mappings:
        for name in mapping or {}:
            if not _ENV_NAME.match(name) or name.startswith("_rb_"):
                raise ValueError(f"not a usable environment variable name: {name!r}")


class Executor(abc.ABC):
    """Runs scripts on one host. Thread-safe: several `run()` calls may be in flight at once."""

    host: str

    @abc.abstractmethod
    def run(
        self,
        script: str,
        *,
        shell: str = "sh",
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> Result:
        """Run `script` as `<shell> -ec <script>` with stdin at EOF; never raises for a failing command."""

    @abc.abstractmethod
    def kill_all(self) -> None:
        """Stop every command this executor runs (from another thread); return once they are gone."""

    @abc.abstractmethod
    def platform(self) -> str:
        """`uname -s` lowercased: "linux", "darwin", ..."""

    def missing_programs(self, programs: Iterable[str]) -> list[str]:
        """The programs `command -v` cannot find on the host, checked in one command for all."""
        names = list(programs)
        if not names:
            return []
        words = " ".join(shlex.quote(name) for name in names)
        script = f'for p in {words}; do command -v "$p" >/dev/null 2>&1 || printf "%s\\n" "$p"; done'
        result = self.run(script, timeout=60)
        if not result.ok:
            raise PreflightFailed(f"{self.host}: cannot look for programs: {result.tail('stderr', 3)}")
        return result.stdout.splitlines()

    def close(self) -> None:
        """Release the host's resources; the default has none."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class StreamText:
    """One output stream: decoded incrementally (UTF-8, errors replaced) and split into lines as it arrives.

    A multi-byte character or a line may straddle two reads; the incremental decoder and `_partial` carry
    the unfinished piece over so the callback only ever sees whole lines.
    """

    def __init__(self, name: str, on_output: OutputCallback | None) -> None:
        self.name = name
        self.error: BaseException | None = None
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chunks: list[str] = []
        self._partial: list[str] = []

    def feed(self, data: bytes) -> None:
        self._add(self._decoder.decode(data))

    def finish(self) -> None:
        """End of stream: flush the decoder and report a last line that had no newline."""
        self._add(self._decoder.decode(b"", final=True))
        if self._partial:
            self._emit(["".join(self._partial)])
            self._partial = []

    def text(self) -> str:
        return "".join(self._chunks)

    def _add(self, text: str) -> None:
        if not text:
            return
        self._chunks.append(text)
        if self._on_output is None or self.error is not None:
            return
        if "\n" not in text:
            self._partial.append(text)
            return
        first, *rest = text.split("\n")
        self._emit(["".join(self._partial) + first, *rest[:-1]])
        self._partial = [rest[-1]] if rest[-1] else []

    def _emit(self, lines: list[str]) -> None:
        """Call back; a failing callback is kept for `run()` to re-raise, and reading goes on regardless
        (a reader that stopped would fill the pipe or channel window and hang the command)."""
        assert self._on_output is not None
        try:
            for line in lines:
                self._on_output(self.name, line)
        except BaseException as error:  # noqa: BLE001 - re-raised by run() in the caller's thread
            self.error = error


class Job:
    """One running command as the kill machinery sees it; shared between `run()` and `kill_all()`."""

    def __init__(self, parts: int = 2) -> None:
        self.pgid: int | None = None
        self.interrupted = False
        self.timed_out = False
        self.done = threading.Event()
        self.wake = threading.Event()
        self.pgid_known = threading.Event()
        self._parts = parts
        self._claimed = False
        self._lock = threading.Lock()

    def set_pgid(self, pgid: int) -> None:
        self.pgid = pgid
        self.pgid_known.set()
        self.wake.set()

    def part_done(self) -> None:
        """A reader finished; the job is done when all of them have (output drained, exit status known)."""
        with self._lock:
            self._parts -= 1
            if self._parts == 0:
                self.done.set()
                self.wake.set()

    def interrupt(self) -> None:
        self.interrupted = True
        self.wake.set()

    def claim_kill(self) -> bool:
        """True for the one caller (timeout or kill_all) that gets to signal this job's process group."""
        with self._lock:
            if self._claimed or self.pgid is None:
                return False
            self._claimed = True
            return True


class JobTable:
    """The commands an executor is running, so `kill_all()` (another thread) can find and stop them."""

    def __init__(self) -> None:
        self._jobs: set[Job] = set()
        self._changed = threading.Condition()

    def add(self, job: Job) -> Job:
        with self._changed:
            self._jobs.add(job)
        return job

    def remove(self, job: Job) -> None:
        with self._changed:
            self._jobs.discard(job)
            self._changed.notify_all()

    def interrupt_all(self) -> list[Job]:
        """Flag and wake every job; return those whose group the caller now owns the right to kill."""
        with self._changed:
            jobs = list(self._jobs)
        for job in jobs:
            job.interrupt()
        return [job for job in jobs if job.claim_kill()]

    def wait_empty(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._jobs, timeout)


Signaller = Callable[[list[int], str], None]
"""Sends a signal ("TERM" or "KILL") to whole process groups on the executor's host."""


def stop_groups(jobs: list[Job], signal: Signaller, grace: float = KILL_GRACE) -> None:
    """Staged stop: SIGTERM the groups, give them `grace` seconds to finish, then SIGKILL what is left.

    SIGKILL goes out unconditionally: "the leader exited" does not mean its children did, and a group of
    zombies (orphans no init reaps) would make a "still there?" probe wait out the grace every time.
    """
    pgids = [job.pgid for job in jobs if job.pgid is not None]
    signal(pgids, "TERM")
    deadline = time.monotonic() + grace
    for job in jobs:
        job.done.wait(max(0.0, deadline - time.monotonic()))
    signal(pgids, "KILL")


def supervise(job: Job, timeout: float | None, stop: Callable[[Job], None]) -> None:
    """Wait until the job is done, times out (→ `timed_out`) or is interrupted; `stop` it in the latter two."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not job.done.is_set():
        if job.interrupted:
            stop(job)
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            job.timed_out = True
            stop(job)
            return
        job.wake.wait(remaining)
        job.wake.clear()
