"""The run's side of four eyes: at a step under `approval:`, ask, wait, journal who approved, go on.

Beside `asking` (confirmations and manual answers): the runner calls `Gate.check` before a step runs on any
host. The request names the exact document (`document`), so only approvals of what will run now count: a
resume with another value, an edited runbook or another host set makes another document, and the approvals
of the old one are said not to apply. The wait ends when enough distinct others approved (go on), one
rejected (`Declined`), the step's `approval.timeout` passed (`ApprovalTimedOut`: resumable, and an approval
given later still counts), or Ctrl-C (`Interrupted` by the caller: the same). `--break-glass "REASON"` lets
the requester go on alone: said in red, journaled with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine import records
from engine.approvals import document
from engine.approvals.desk import Desk, Given, Request
from engine.console import Terminal
from engine.errors import ApprovalTimedOut, Declined
from engine.planning import PlannedStep
from engine.records import ApprovalDecision, Verdict
from engine.state.base import RunWriter

LONGEST_WAIT = 7 * 24 * 3600.0
"""A step without `approval.timeout` waits at most this long (every loop is bounded)."""


@dataclass(frozen=True, kw_only=True)
class Run:
    """What the gate knows of the run it guards."""

    run_id: str
    runbook: str
    runbook_sha256: str
    plan_sha256: str
    user: str
    how_to_approve: str  # the exact command, minus run id and step: `runbook approve`
    break_glass: str | None = None
    allowed_signers: str | None = None  # `run --allowed-signers FILE` (files)


@dataclass
class Gate:
    desk: Desk
    journal: RunWriter
    terminal: Terminal
    run: Run
    journaled: set[tuple[str, str, str]] = field(default_factory=set)  # (sha256, approver, verdict)

    def remember(self, given: Iterable[ApprovalDecision]) -> None:
        """Answers the run being resumed journaled already: not journaled twice."""
        self.journaled.update((g.sha256, g.approver, g.verdict) for g in given)

    def check(self, planned: PlannedStep) -> None:
        """Return once the step may run; raise to stop the run before it."""
        approval = planned.approval
        if approval is None:
            return
        if approval.required == 0:
            self.terminal.say("  approval: none required (approvals: 0, set knowingly)", "yellow")
            return
        approved = document.document(
            self.run.run_id, planned, self.run.runbook_sha256, self.run.plan_sha256, self.terminal.masker.mask
        )
        required = approval.required or 1
        self.journal.append(
            records.approval_request(planned.id, approved.digests(), required, approval.from_, self.run.user)
        )
        if self.run.break_glass is not None:
            self._break_glass(planned.id, approved.sha256, self.run.break_glass)
            return
        request = self.desk.request(
            Request(
                run_id=self.run.run_id,
                step=planned.id,
                runbook=self.run.runbook,
                sha256=approved.sha256,
                document=approved.text,
                required=required,
                from_=approval.from_,
                allowed_signers=self.run.allowed_signers or approval.allowed_signers,
                requester=self.run.user,
            )
        )
        self._tell(request)
        self._wait(request, approval.timeout)

    def _wait(self, request: Request, timeout: float | None) -> None:
        deadline = time.monotonic() + min(timeout or LONGEST_WAIT, LONGEST_WAIT)
        said_void = False
        while True:
            found = self.desk.decisions(request)
            void = [g for g in found if g.sha256 != request.sha256]
            if void and not said_void:
                said_void = True
                self.terminal.say(
                    f"  {len(void)} answer(s) about another version of this step do not apply: what would "
                    "run changed since (a value, the runbook or the hosts); asked again",
                    "yellow",
                )
            mine = [g for g in found if g.sha256 == request.sha256]
            for why in self.desk.refused():
                self.terminal.say(f"  does not count: {why}", "yellow")
            self._journal(mine)
            if rejected := next((g for g in mine if g.verdict is Verdict.REJECTED), None):
                self.desk.close_request(request)
                said = f": {rejected.comment}" if rejected.comment else ""
                raise Declined(f"step {request.step!r} was rejected by {rejected.approver}{said}")
            yes = {g.approver for g in mine if g.verdict is Verdict.APPROVED}
            if len(yes) >= request.required:
                self.desk.close_request(request)
                self.terminal.say(f"  approved by {', '.join(sorted(yes))}: going on", "bold green")
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ApprovalTimedOut(
                    f"step {request.step!r}: {len(yes)} of {request.required} approval(s) within the "
                    f"approval timeout; resume with --resume {request.run_id} (approvals given until then "
                    "still count)"
                )
            self.desk.wait(left)

    def _journal(self, given: list[Given]) -> None:
        for g in given:
            key = (g.sha256, g.approver, g.verdict.value)
            if key in self.journaled:
                continue
            self.journaled.add(key)
            self.journal.append(
                records.approval(g.step, g.sha256, g.verdict, g.approver, g.given, g.comment, g.proof)
            )
            said = f" ({g.comment})" if g.comment else ""
            self.terminal.say(f"  {g.verdict} by {g.approver} at {g.given}{said} — {g.proof}", "green")

    def _tell(self, request: Request) -> None:
        who = f"members of {', '.join(request.from_)}" if request.from_ else "any operator"
        self.terminal.say(
            f"  APPROVAL NEEDED: {request.required} approval(s) by {who} other than {request.requester}, "
            f"of document sha256 {request.sha256[:16]}… ({self.desk.where})",
            "bold magenta",
        )
        self.terminal.say(
            f"  to approve, on another workstation: {self.run.how_to_approve} {request.run_id} {request.step}"
        )
        self.terminal.say(
            "  waiting… (Ctrl-C stops the run, resumable: an approval given later still counts)"
        )

    def _break_glass(self, step: str, sha256: str, reason: str) -> None:
        given = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.terminal.say(f"  BREAK GLASS: {self.run.user} approves alone: {reason}", "bold red")
        self.journal.append(
            records.approval(
                step,
                sha256,
                Verdict.BREAK_GLASS,
                self.run.user,
                given,
                reason,
                "break glass by the requester",
            )
        )
