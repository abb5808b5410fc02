"""The outcome vocabulary: what happened to each step on each host (`Status`) and to a whole run
(`RunStatus`), kept apart from process exit codes.

These enums are the only spelling of a status: the runner, the journal's records, resume, the summary, the
run history and the filled checklist all read and write these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """One step on one host."""

    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"  # started, no end recorded: it may or may not have had its effect
    DONE_BEFORE = "done_before"  # finished well in the run being resumed; not run again

    @property
    def label(self) -> str:
        """As people read it (`timed out`, `done before`); the value is the journal's spelling."""
        return self.value.replace("_", " ")

    @property
    def failed(self) -> bool:
        return self in (Status.FAILED, Status.TIMED_OUT, Status.INTERRUPTED, Status.UNKNOWN)

    @property
    def finished_well(self) -> bool:
        """Done, and not to be run again by a resume."""
        return self in (Status.OK, Status.SKIPPED)

    @property
    def ran_and_failed(self) -> bool:
        """It ended, and badly: a resume runs it again without asking."""
        return self in (Status.FAILED, Status.TIMED_OUT)

    @classmethod
    def recorded(cls, value: object) -> Status:
        """The status a journal record holds (a hyphen reads as an underscore: `timed-out`, `done-before`
        of older journals); anything unknown to this version reads as UNKNOWN."""
        try:
            return cls(str(value).replace("-", "_"))
        except ValueError:
            return cls.UNKNOWN


class RunStatus(StrEnum):
    """A whole run, as its `run-end` record says."""

    OK = "ok"
    FAILED = "failed"
    DECLINED = "declined"  # the warnings were not confirmed: nothing ran
    PREFLIGHT_FAILED = "preflight-failed"
    INTERRUPTED = "interrupted"
    AWAITING_APPROVAL = "awaiting-approval"  # waited for approvals longer than `approval.timeout`


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
