"""What happened to each step on each host: a status enum kept apart from process exit codes.

Outcomes serialise themselves into journal records, and the runner, the summary and the filled
checklist all read the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"
    DONE_BEFORE = "done-before"  # finished well in the run being resumed; not run again

    @property
    def failed(self) -> bool:
        return self in (Status.FAILED, Status.TIMED_OUT, Status.INTERRUPTED, Status.UNKNOWN)


@dataclass(frozen=True)
class HostOutcome:
    step: str
    host: str
    status: Status
    exit_code: int | None = None
    duration: float = 0.0
    attempts: int = 1
    reason: str = ""
    stdout: str = ""
    stderr: str = ""

    def record(self, tail_lines: int = 20) -> dict[str, Any]:
        """The journal's `step-end` record (output tails only: the full output is in its own file)."""
        return {
            "type": "step-end",
            "step": self.step,
            "host": self.host,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "duration": round(self.duration, 3),
            "attempt": self.attempts,
            "reason": self.reason or None,
            "stdout_tail": _tail(self.stdout, tail_lines),
            "stderr_tail": _tail(self.stderr, tail_lines),
        }


@dataclass(frozen=True)
class StepOutcome:
    step: str
    hosts: tuple[HostOutcome, ...]
    failed_hosts: tuple[str, ...] = ()
    stopped: bool = False  # the run must not go on after this step

    @property
    def status(self) -> Status:
        if any(h.status is Status.INTERRUPTED for h in self.hosts):
            return Status.INTERRUPTED
        if self.failed_hosts:
            return Status.FAILED
        if self.hosts and all(h.status is Status.SKIPPED for h in self.hosts):
            return Status.SKIPPED
        return Status.OK

    def context(self) -> dict[str, Any]:
        """`steps.<id>` for later templates: the first host's output, and every host's."""
        hosts = {
            h.host: {
                "stdout": h.stdout,
                "stderr": h.stderr,
                "exit_code": h.exit_code,
                "status": h.status.value,
            }
            for h in self.hosts
        }
        first = self.hosts[0] if self.hosts else None
        return {
            "stdout": first.stdout if first else "",
            "stderr": first.stderr if first else "",
            "exit_code": first.exit_code if first else None,
            "status": self.status.value,
            "hosts": hosts,
        }


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if text else ""
