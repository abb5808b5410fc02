"""Runs scripts on this machine: `<shell> -ec <script>` in its own process group.

The own process group (`start_new_session=True`) is what makes timeouts and Ctrl-C reliable: killing the
group reaches every process the script started, not just the shell, so nothing is left behind. The
sequence (readers, timeout, kill, result) is `Executor.run`'s; this module supplies the primitives.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from engine.executors import watchdog
from engine.executors.base import CannotStart, Executor, Invocation, Process, check_env_names
from engine.executors.jobs import Job
from engine.transports import this_platform

# The command's group leader waits for the engine's go (a line on stdin), which comes once the group is in
# the journal: an engine killed before that leaves a script that never started (exit 125 at the end of
# input), so a resume may run the step again; after it, the resume knows which group to look for. The
# script then reads an empty, closed stdin.
_GO = 'read -r _rb_go || exit 125; exec "$0" -ec "$1"'


class LocalExecutor(Executor):
    """The machine the runbook runs on; `extra_env` is added to every command's environment."""

    def __init__(self, host: str = "local", extra_env: Mapping[str, str] | None = None) -> None:
        check_env_names(extra_env)
        super().__init__(host)
        self._extra_env = dict(extra_env or {})

    def start(self, job: Job, invocation: Invocation) -> Process:
        # Secrets go into the child's environment, never into its argument list (visible to `ps`).
        environ = {**os.environ, **self._extra_env, **invocation.env, **invocation.secrets}
        argv = ["sh", "-c", _GO, invocation.shell, invocation.script]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=invocation.cwd,
                env=environ,
                start_new_session=True,
            )
        except OSError as error:  # no such shell or cwd: a failed command, not a crash
            place = f" in {invocation.cwd!r}" if invocation.cwd else ""
            raise CannotStart(
                f"cannot start {invocation.shell!r}{place}: {error.strerror or error}"
            ) from None
        watchdog.watch(proc.pid)  # the group dies with the engine (see watchdog.py)
        process = _LocalProcess(proc)
        stat = _stat(proc.pid)
        go = job.set_pgid(proc.pid, stat.started if stat else None)  # True: journaled, now the go
        assert proc.stdin is not None
        try:
            if go:  # else EOF alone: `read` fails and the wrapper exits 125 without running the script
                proc.stdin.write(b"\n")
            proc.stdin.close()
        except OSError:
            pass  # it is gone already (killed): its exit status says so
        return process

    def signal_groups(self, pgids: list[int], name: str) -> None:
        for pgid in pgids:
            try:
                os.killpg(pgid, getattr(signal, f"SIG{name}"))
            except (ProcessLookupError, PermissionError):
                pass  # already gone

    def group_alive(self, pgid: int, started: str | None) -> bool:
        """A live (not zombie) process in group `pgid` that is not younger than its journaled leader; a leader
        with another start time means the id was reused. Without /proc: `killpg(pgid, 0)`."""
        if not os.path.isdir("/proc/self"):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        leader = _stat(pgid)
        if leader is not None and started is not None and leader.started != started:
            return False  # another process has the id now
        floor = int(started) if started is not None and started.isdigit() else 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if (
                    stat is not None
                    and stat.pgrp == pgid
                    and stat.state != "Z"
                    and int(stat.started) >= floor
                ):
                    return True
        return False

    def platform(self) -> str:
        """`uname -s` lowercased, as SSH hosts report it ("linux", "darwin"; "windows"), without a subprocess."""
        return this_platform()


@dataclass(frozen=True)
class _Stat:
    """The fields of /proc/PID/stat a resume needs: state ("Z": zombie), process group, start time."""

    state: str
    pgrp: int
    started: str  # clock ticks after boot: with the pid, tells this process from a later one with its id


def _stat(pid: int) -> _Stat | None:
    """/proc/PID/stat read (the name in parentheses may hold spaces); None when gone or not Linux."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return None
    return _Stat(fields[0], int(fields[2]), fields[19])


class _LocalProcess(Process):
    """A child process read through its two pipes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._stdout, self._stderr = proc.stdout, proc.stderr

    def read_stdout(self, size: int) -> bytes:
        return os.read(self._stdout.fileno(), size)

    def read_stderr(self, size: int) -> bytes:
        return os.read(self._stderr.fileno(), size)

    def wait(self) -> object:
        return self._proc.wait()

    def returncode(self) -> int | None:
        code = self._proc.poll()
        if code is not None and code < 0:
            return 128 - code  # killed by a signal: report it the way a shell (and the SSH side) does
        return code

    def close(self, drained: bool) -> None:
        watchdog.unwatch(self._proc.pid)
        # A pipe still held by an escaped process is left open: its reader thread may still be in `read`.
        if drained:
            self._stdout.close()
            self._stderr.close()
