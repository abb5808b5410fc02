"""The one executor interface and the values it deals in: `Result`, `SSHTarget`, `SSHOptions`.

Everything here is paramiko-free on purpose: `runbook validate` imports this package and must stay fast, so
the SSH *values* (`SSHTarget`, `SSHOptions`) live here and only `ssh.py` touches paramiko.
"""

from __future__ import annotations

import abc
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

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

    def close(self) -> None:  # noqa: B027 - optional hook: executors without resources need not override it
        """Release the host's resources; the default has none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
