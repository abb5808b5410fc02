"""The one executor template and what it deals in: `Executor`, `Process`, `Invocation`, `Result`.

Everything here is paramiko-free on purpose: a local run imports this package and must stay fast, so only
`ssh.py` touches paramiko. How a host is reached (`Transport`, `SSHTarget`, `SSHOptions`) is
`engine.transports`: the plan side names it without importing any executor.
"""

from __future__ import annotations

import abc
import re
import shlex
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from engine.errors import PreflightFailed
from engine.executors.jobs import (
    KILL_GRACE,
    GroupCallback,
    Job,
    JobTable,
    OutputCallback,
    Sink,
    StreamText,
    kill_jobs,
    start_reader,
    stop_job,
    supervise,
)
from engine.executors.nodefiles import Ended

__all__ = [
    "KILL_GRACE",
    "CannotStart",
    "Executor",
    "Invocation",
    "OutputCallback",
    "Process",
    "Result",
]

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
    connection_lost: str | None = None
    """Why the connection ended under the command (no exit status): it may still be running on the host."""
    not_started: str | None = None
    """Why the command could not be started at all (the host unreachable, its key changed): it did not run."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.interrupted

    def tail(self, stream: str = "stdout", lines: int = 10) -> str:
        """The last `lines` lines of a stream: what a failure report shows without drowning the reader."""
        text = self.stdout if stream == "stdout" else self.stderr
        return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if lines > 0 else ""


def check_env_names(*mappings: Mapping[str, str] | None) -> None:
    """Refuse names a shell cannot export: they would be silently dropped or, remotely, be code."""
    for mapping in mappings:
        for name in mapping or {}:
            if not _ENV_NAME.match(name) or name.startswith("_rb_"):
                raise ValueError(f"not a usable environment variable name: {name!r}")


@dataclass(frozen=True)
class Invocation:
    """One command as an executor's `start()` gets it: the script, how to run it, and with what."""

    script: str
    shell: str = "sh"
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


class CannotStart(Exception):
    """The command could not be started here (no such shell or cwd): a failed command (127), not a crash."""


class Process(abc.ABC):
    """One started command, as the template in `Executor.run` drives it (invoke's Runner primitives)."""

    join_grace: float = 1.0
    """Seconds to wait for a reader once the command was killed but its output is still held open."""

    @abc.abstractmethod
    def read_stdout(self, size: int) -> bytes:
        """Up to `size` bytes of stdout; b"" at its end."""

    @abc.abstractmethod
    def read_stderr(self, size: int) -> bytes:
        """Up to `size` bytes of stderr; b"" at its end."""

    @abc.abstractmethod
    def wait(self) -> object:
        """Block until the exit status is known (called once stdout is drained)."""

    @abc.abstractmethod
    def returncode(self) -> int | None:
        """The exit status, 128+N for a signal N; None if none is known (killed, or the connection died)."""

    def readers(self, stdout: Sink, stderr: Sink, job: Job, name: str) -> list[threading.Thread]:
        """Drain both streams to their end on daemon threads, stdout's then collecting the exit status
        (`wait`); each stream's end is one `job.part_done()`. Both must be read at once: a stream left
        unread fills its pipe (or the channel's window) and the command blocks forever. Two pipes take a
        thread each; an executor that can wait on both streams at once starts one."""
        return [
            start_reader(self.read_stdout, stdout, job, self.wait, f"{name}-stdout"),
            start_reader(self.read_stderr, stderr, job, None, f"{name}-stderr"),
        ]

    def stderr_sink(self, stream: StreamText, job: Job) -> Sink:
        """Where stderr's bytes go; an executor that talks on stderr itself puts a filter in front."""
        return stream

    def connection_lost(self) -> str | None:
        """Why the connection to the host ended before the command's exit status came (None: it did not)."""
        return None

    def abandon(self) -> None:  # noqa: B027 - optional hook: a local pipe needs nothing
        """The command was killed but something still holds its output open: stop waiting for it."""

    def close(self, drained: bool) -> None:  # noqa: B027 - optional hook
        """Release the command's resources; `drained` says both readers reached the end of their stream."""


class Executor(abc.ABC):
    """Runs scripts on one host. Thread-safe: several `run()` calls may be in flight at once.

    `run()` is the one sequence every executor shares (start, two readers, supervise, close, join, exit
    code, `Result`); an executor supplies the primitives only: `start`, `signal_groups`, `platform`, and
    optionally `slot`, `connect`, `close`. Adding one means a subclass here and a line in `executor_for`.
    """

    host: str

    def __init__(self, host: str) -> None:
        self.host = host
        self._jobs = JobTable()

    # -- the template --------------------------------------------------------------------------------

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
        on_group: GroupCallback | None = None,
    ) -> Result:
        """Run `script` as `<shell> -ec <script>` with stdin at EOF; never raises for a failing command.

        `on_group` hears the command's process group (and what tells a reused id apart) as soon as it is
        known, so the journal can name what may still run after a crash."""
        check_env_names(env, secrets)
        invocation = Invocation(script, shell, cwd, dict(env or {}), dict(secrets or {}))
        job = self._jobs.add(Job(on_group))
        try:
            with self.slot():
                if job.interrupted:  # kill_all() came while we waited for a slot: start nothing
                    return Result(script, self.host, None, "", "", 0.0, interrupted=True)
                return self._execute(job, invocation, timeout, on_output)
        finally:
            self._jobs.remove(job)

    def _execute(
        self, job: Job, invocation: Invocation, timeout: float | None, on_output: OutputCallback | None
    ) -> Result:
        start = time.monotonic()
        try:
            process = self.start(job, invocation)
        except CannotStart as error:
            return Result(
                invocation.script, self.host, 127, "", f"runbook: {error}\n", time.monotonic() - start
            )

        on_output = _stopping(job, on_output)
        out, err = StreamText("stdout", on_output), StreamText("stderr", on_output)
        try:
            readers = process.readers(out, process.stderr_sink(err, job), job, self.host)
            supervise(job, timeout, self._stop)
            if not job.done.is_set():
                process.abandon()
            for reader in readers:  # bounded: output held open by an escaped process must not hang us
                reader.join(None if job.done.is_set() else process.join_grace)
            code = process.returncode()
            lost = process.connection_lost() if code is None else None
        finally:
            process.close(job.done.is_set())
        if lost is not None:
            err.feed(
                f"runbook: lost the connection to {self.host} ({lost}) before the command's exit status "
                "came: it may still be running there\n".encode()
            )
        return replace(
            _result(job, invocation.script, self.host, code, out, err, start), connection_lost=lost
        )

    def kill_all(self) -> None:
        """Stop every command this executor runs (from another thread); return once they are gone."""
        kill_jobs(self._jobs, self.signal_groups)

    def _stop(self, job: Job) -> None:
        """A timeout or an interrupt: stop the job's group, once its id is known (else nothing started)."""
        if job.pgid_known.wait(KILL_GRACE):
            stop_job(job, self.signal_groups)

    # -- the primitives ------------------------------------------------------------------------------

    @abc.abstractmethod
    def start(self, job: Job, invocation: Invocation) -> Process:
        """Start the command in a process group of its own and tell `job` its id (`job.set_pgid`), now
        or from its output; raise `CannotStart` for a command that cannot start here."""

    @abc.abstractmethod
    def signal_groups(self, pgids: list[int], name: str) -> None:
        """Send SIG`name` ("TERM", "KILL") to whole process groups on the host; gone ones are no error."""

    @abc.abstractmethod
    def platform(self) -> str:
        """`uname -s` lowercased: "linux", "darwin", ..."""

    @abc.abstractmethod
    def group_alive(self, pgid: int, started: str | None) -> bool:
        """Whether a process group journaled by an earlier run (`on_group`) still has a live process here;
        `started` (when known) tells the group from a later one that reuses the id. Zombies do not count."""

    def stop_group(self, pgid: int, started: str | None, grace: float = KILL_GRACE) -> bool:
        """Stop a group left by an earlier run the way a timeout stops one (SIGTERM, `grace` seconds, SIGKILL);
        True once it is gone. Signals only a group that `group_alive` still recognises (never a reused id)."""
        for name, wait in (("TERM", grace), ("KILL", grace)):
            if not self.group_alive(pgid, started):
                return True
            self.signal_groups([pgid], name)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self.group_alive(pgid, started):
                    return True
                time.sleep(0.2)
        return not self.group_alive(pgid, started)

    def ended(self, pgid: int, started: str | None) -> Ended | None:
        """How a group journaled by an earlier run ended, where the host kept its exit status (`nodefiles`);
        None: not known here. Ask only once `group_alive` is False. A local command dies with its engine."""
        return None

    def forget(self, pgid: int, started: str | None) -> None:  # noqa: B027 - nothing kept by default
        """Delete what the host kept of that group's command, once its outcome is journaled."""

    def slot(self) -> AbstractContextManager[object]:
        """Held while a command runs: an executor with a limit on commands at once (SSH sessions) waits here."""
        return nullcontext()

    def warm(self) -> None:  # noqa: B027 - optional hook: starting a local command costs no round trip
        """Get the next command's start ready now, while the host runs nothing and the run waits on something
        else (an SSH host opens its session ahead: `engine.executors.sshspare`); never raises."""

    def connect(self) -> None:  # noqa: B027 - optional hook: a local executor has nothing to connect
        """Reach the host now, before anything runs (preflight); raises `ConnectionFailed`. Idempotent."""

    def missing_programs(self, programs: Iterable[str]) -> list[str]:
        """The programs `command -v` cannot find on the host, checked in one command for all."""
        names = list(programs)
        if not names:
            return []
        result = self.run(lookup_script(names), timeout=60)
        if not result.ok:
            raise PreflightFailed(f"{self.host}: cannot look for programs: {result.tail('stderr', 3)}")
        return result.stdout.splitlines()

    def probe(self, programs: Iterable[str]) -> tuple[str, list[str]]:
        """The host's platform and the programs it lacks (preflight); an executor that must ask the host
        both asks in one command (`SSHExecutor`): one round trip per host instead of two."""
        return self.platform(), self.missing_programs(programs)

    def close(self) -> None:  # noqa: B027 - optional hook: executors without resources need not override it
        """Release the host's resources; the default has none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def lookup_script(programs: Iterable[str]) -> str:
    """A POSIX sh loop printing, one a line, the `programs` that `command -v` cannot find."""
    words = " ".join(shlex.quote(name) for name in programs)
    return f'for p in {words}; do command -v "$p" >/dev/null 2>&1 || printf "%s\\n" "$p"; done'


def _stopping(job: Job, on_output: OutputCallback | None) -> OutputCallback | None:
    """`on_output`, stopping the command when it fails: output that cannot be kept (a full disk under the
    step's output file) is no reason to wait for the command's end; `run()` raises the error once it is gone."""
    if on_output is None:
        return None
    deliver = on_output

    def delivering(stream: str, line: str) -> None:
        try:
            deliver(stream, line)
        except BaseException:
            job.interrupt()
            raise

    return delivering


def _result(
    job: Job, command: str, host: str, code: int | None, out: StreamText, err: StreamText, start: float
) -> Result:
    """The `Result` of a job; a command we killed has no exit status of its own (`exit_code` None).

    An exception raised by the `on_output` callback in a reader thread (which stopped the command) is
    re-raised here, in the caller's; so is one raised by `on_group` (the script never started).
    """
    if job.group_error is not None:
        raise job.group_error
    for stream in (out, err):
        if stream.error is not None:
            raise stream.error
    killed = job.timed_out or job.interrupted
    return Result(
        command=command,
        host=host,
        exit_code=None if killed else code,
        stdout=out.text(),
        stderr=err.text(),
        duration=time.monotonic() - start,
        timed_out=job.timed_out,
        interrupted=job.interrupted and not job.timed_out,
    )
