"""Four eyes on paper and in the filled checklist: a signature line per required approver, or who approved.

On paper (no run) each required approval is a line to sign: name, time, signature, and the first characters
of the document's sha256 the approver saw. Filled from a run, each approval the run journaled for the step's
document (its latest request) is written out — approver, time, comment, proof, sha256 — and a break-glass is
written as one, with its reason, so an auditor sees every such run.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.checklist.filling import clock
from engine.history import RunHistory
from engine.planning import PlannedStep
from engine.records import Verdict

LINE = "________"


@dataclass(frozen=True)
class Signature:
    text: str
    signed: bool  # filled: an approval was given (ticked)
    glass: bool = False  # a break-glass: shown in red


def signatures(planned: PlannedStep, run: RunHistory | None, day: str) -> tuple[Signature, ...]:
    approval = planned.approval
    if approval is None or approval.required == 0:
        return ()
    if run is None:
        count = approval.required or 1
        blank = f"Approved by {LINE} (not the operator) at {LINE}, document sha256 {LINE}, signature {LINE}"
        return tuple(Signature(blank, False) for _ in range(count))
    asked = [r for r in run.requests if r.step == planned.id]
    if not asked:
        return (Signature("no approval was asked: the run did not reach this step", False),)
    sha = asked[-1].sha256
    found = [a for a in run.approvals if a.step == planned.id and a.sha256 == sha]
    lines = [
        _given(a.verdict, a.approver, clock(a.given or a.time, day), a.comment, a.proof, sha) for a in found
    ]
    missing = asked[-1].required - sum(1 for a in found if a.verdict == Verdict.APPROVED)
    if not any(a.verdict == Verdict.BREAK_GLASS for a in found):
        lines += [Signature(f"approval {LINE}: not given", False)] * max(0, missing)
    return tuple(lines)


def _given(verdict: str, approver: str, when: str, comment: str, proof: str, sha: str) -> Signature:
    if verdict == Verdict.BREAK_GLASS:
        return Signature(
            f"BREAK GLASS: {approver} approved alone at {when}, reason: {comment} (document sha256 {sha[:16]}…)",
            True,
            glass=True,
        )
    said = f", comment: {comment}" if comment else ""
    word = "Approved" if verdict == Verdict.APPROVED else "REJECTED"
    return Signature(
        f"{word} by {approver} at {when} ({proof}), document sha256 {sha[:16]}…{said}",
        verdict == Verdict.APPROVED,
    )
