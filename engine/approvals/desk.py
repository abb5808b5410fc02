"""The approvals' seam: where a run's requests wait and where approvers' answers arrive.

`StateBackend.approvals()` gives the desk of its kind, the one place it is chosen: on the shared PostgreSQL
state the database keeps requests and approvals and proves who gave each (its login; its triggers refuse
the requester, non-operators, roles outside `from:` and a second approval by one person); on files,
approvals are SSH signatures over the document, dropped next to the run and checked against an
`allowed_signers` file by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.records import Verdict


@dataclass(frozen=True, kw_only=True)
class Request:
    """A run waiting at a step for approvals of one document (its `sha256`); `requester` and `since` are
    the desk's (on the database, the session's login and the server's clock)."""

    run_id: str
    step: str
    runbook: str
    sha256: str
    document: str  # the canonical JSON approvers read (secrets masked)
    required: int
    from_: tuple[str, ...] = ()
    allowed_signers: str | None = None  # files: the keys whose signatures count
    requester: str = ""
    since: str = ""


@dataclass(frozen=True, kw_only=True)
class Given:
    """An approval or a rejection as the desk proves it: who, when, about which document, and how known."""

    run_id: str
    step: str
    sha256: str
    verdict: Verdict
    approver: str
    given: str
    comment: str = ""
    proof: str = ""  # "database login bob", "ssh signature SHA256:… of bob"


class Desk(Protocol):
    where: str
    """For messages: the database, or the directory signatures are dropped in."""

    def who(self) -> str:
        """Who this side is: the database login (proven by the server), or the OS user (a principal of
        `allowed_signers`)."""
        ...

    def request(self, request: Request) -> Request:
        """Record that the run waits for `request` (again after a resume: kept once); as recorded."""
        ...

    def decisions(self, request: Request) -> list[Given]:
        """Every valid approval and rejection of the request's step, for any document (the caller keeps
        those of its own)."""
        ...

    def refused(self) -> list[str]:
        """Answers that arrived and do not count, each said once (a bad signature); the database refuses
        them at the door instead, so it has none."""
        ...

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when an answer may have arrived."""
        ...

    def close_request(self, request: Request) -> None:
        """The run went on or stopped on a rejection: it is no longer pending."""
        ...

    def pending(self) -> list[Request]:
        """Requests nobody has closed, oldest first."""
        ...

    def find(self, run_id: str, step: str) -> Request | None:
        """The newest request of the run's step (a run id's unique beginning is enough)."""
        ...

    def give(self, request: Request, verdict: Verdict, comment: str, key: Path | None) -> Given:
        """The approver's answer (`key`: the SSH key that signs it, on files); refused by the rules with
        `UsageError` saying which."""
        ...

    def close(self) -> None: ...
