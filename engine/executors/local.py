"""Runs scripts on this machine: `<shell> -ec <script>` in its own process group, read by two threads.

The own process group (`start_new_session=True`) is what makes timeouts and Ctrl-C reliable: killing the
group reaches every process the script started, not just the shell, so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping

from engine.executors.base import (
    KILL_GRACE,
    Executor,
    Job,
    JobTable,
    OutputCallback,
    Result,
    StreamText,
    check_env_names,
    stop_groups,
    supervise,
)

_CHUNK = 65536


class LocalExecutor(Executor):
    """The machine the runbook runs on; `extra_env` is added to every command's environment."""

    def __init__(self, host: str = "local", extra_env: Mapping[str, str] | None = None) -> None:
        check_env_names(extra_env)
        self.host = host
        self._extra_env = dict(extra_env or {})
        self._jobs = JobTable()

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
        check_env_names(env, secrets)
        # Secrets go into the child's environment, never into its argument list (visible to `ps`).
        environ = {**os.environ, **self._extra_env, **(env or {}), **(secrets or {})}
        job = self._jobs.add(Job())
        try:
            return self._run(job, [shell, "-ec", script], cwd, environ, timeout, on_output)
        finally:
            self._jobs.remove(job)

    def kill_all(self) -> None:
        claimed = self._jobs.interrupt_all()
        if claimed:
            stop_groups(claimed, _signal_groups)
        self._jobs.wait_empty(KILL_GRACE + 1.0)

    def platform(self) -> str:
        """From `sys.platform` ("linux", "darwin", "freebsd14" → "freebsd"): no subprocess needed."""
        return sys.platform.rstrip("0123456789")

    def _run(
        self,
        job: Job,
        argv: list[str],
        cwd: str | None,
        environ: dict[str, str],
        timeout: float | None,
        on_output: OutputCallback | None,
    ) -> Result:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=environ,
                start_new_session=True,
            )
        except OSError as error:  # no such shell or cwd: a failed command, not a crash
            message = f"runbook: cannot start {argv[0]!r}: {error.strerror or error}\n"
            return Result(argv[2], self.host, 127, "", message, time.monotonic() - start)
        job.set_pgid(proc.pid)
        out, err = StreamText("stdout", on_output), StreamText("stderr", on_output)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            _start_reader(proc.stdout.fileno(), out, job, proc.wait, self.host),
            _start_reader(proc.stderr.fileno(), err, job, None, self.host),
        ]
        supervise(job, timeout, self._stop)
        for reader in readers:  # bounded: output held open by an escaped process must not hang us
            reader.join(None if job.done.is_set() else 1.0)
        killed = job.timed_out or job.interrupted
        code = proc.poll()
        result = Result(
            command=argv[2],
            host=self.host,
            exit_code=None if killed or code is None else (128 - code if code < 0 else code),
            stdout=out.text(),
            stderr=err.text(),
            duration=time.monotonic() - start,
            timed_out=job.timed_out,
            interrupted=job.interrupted and not job.timed_out,
        )
        for stream in (out, err):
            if stream.error is not None:
                raise stream.error
        return result

    def _stop(self, job: Job) -> None:
        if job.claim_kill():
            stop_groups([job], _signal_groups)
        else:  # kill_all() owns it and is already stopping it
            job.done.wait(KILL_GRACE + 1.0)


def _signal_groups(pgids: list[int], name: str) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, getattr(signal, f"SIG{name}"))
        except (ProcessLookupError, PermissionError):
            pass  # already gone


def _start_reader(
    fd: int, stream: StreamText, job: Job, then: Callable[[], object] | None, host: str
) -> threading.Thread:
    """Drain one pipe to EOF (then, for stdout, reap the process) so neither pipe can fill and block."""

    def read() -> None:
        try:
            while chunk := os.read(fd, _CHUNK):
                stream.feed(chunk)
            stream.finish()
            if then is not None:
                then()
        finally:
            job.part_done()

    thread = threading.Thread(target=read, name=f"runbook-{host}-{stream.name}", daemon=True)
    thread.start()
    return thread
