"""Runs scripts on this machine: `<shell> -ec <script>` in its own process group, read by two threads.

The own process group (`start_new_session=True`) is what makes timeouts and Ctrl-C reliable: killing the
group reaches every process the script started, not just the shell, so nothing is left behind.
"""

from __future__ import annotations

import os
import platform as _platform
import signal
import subprocess
import time
from collections.abc import Mapping
from functools import partial

from engine.executors.base import Executor, OutputCallback, Result, check_env_names
from engine.executors.jobs import (
    Job,
    JobTable,
    StreamText,
    kill_jobs,
    result_of,
    start_reader,
    stop_job,
    supervise,
)


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
        kill_jobs(self._jobs, _signal_groups)

    def platform(self) -> str:
        """`uname -s` lowercased, as SSH hosts report it ("linux", "darwin"; "windows"), without a subprocess."""
        return this_platform()

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
            place = f" in {cwd!r}" if cwd else ""
            message = f"runbook: cannot start {argv[0]!r}{place}: {error.strerror or error}\n"
            return Result(argv[2], self.host, 127, "", message, time.monotonic() - start)
        job.set_pgid(proc.pid)
        out, err = StreamText("stdout", on_output), StreamText("stderr", on_output)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            start_reader(partial(os.read, proc.stdout.fileno()), out, job, proc.wait, f"{self.host}-stdout"),
            start_reader(partial(os.read, proc.stderr.fileno()), err, job, None, f"{self.host}-stderr"),
        ]
        supervise(job, timeout, partial(stop_job, signal=_signal_groups))
        for reader in readers:  # bounded: output held open by an escaped process must not hang us
            reader.join(None if job.done.is_set() else 1.0)
        if job.done.is_set():
            proc.stdout.close()
            proc.stderr.close()
        code = proc.poll()
        if code is not None and code < 0:
            code = 128 - code  # killed by a signal: report it the way a shell (and the SSH side) does
        return result_of(job, argv[2], self.host, code, out, err, start)


def _signal_groups(pgids: list[int], name: str) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, getattr(signal, f"SIG{name}"))
        except (ProcessLookupError, PermissionError):
            pass  # already gone


def this_platform() -> str:
    """This machine's platform under the names `run:` maps use."""
    return _platform.system().lower()
