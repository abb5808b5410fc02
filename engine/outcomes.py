"""The outcome vocabulary: what happened to each step on each host (`Status`, and the `HostOutcome` that
carries it) and to a whole run (`RunStatus`), kept apart from process exit codes.

These enums are the only spelling of a status: the runner, the journal's records, resume, the summary, the
run history and the filled checklist all read and write these values. They are defined in `engine.statuses`
(re-exported here), which `engine.errors` imports without the outcome types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.statuses import RunStatus, Status

__all__ = ["HostOutcome", "RunStatus", "Status", "StepOutcome"]


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
    result: str = ""  # the step's `result` as said for this host, when it went well


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
