"""The status words: what happened to one step on one host (`Status`) and to a whole run (`RunStatus`).

Apart from the outcome types (`engine.outcomes`, which re-exports them) so that `engine.errors`, which says
the run status each error ends a run with, and so every command, imports the words alone.
"""

from __future__ import annotations

from enum import StrEnum


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
