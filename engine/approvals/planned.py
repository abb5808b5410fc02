"""A step's `approval:` as the plan has it: the number rendered from its template, the roles, the wait."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidRunbook
from engine.model import Approval
from engine.rendering import render, template_problem


@dataclass(frozen=True)
class PlannedApproval:
    """`required` None: not known on paper (a value left blank); 0: nobody else is asked, knowingly."""

    required: int | None
    from_: tuple[str, ...] = ()
    timeout: float | None = None
    allowed_signers: str | None = None


def plan_approval(approval: Approval, context: Mapping[str, Any], paper: bool) -> PlannedApproval:
    """Render `required`; a value that is not a whole number ≥ 0 is the runbook's problem, at its line."""
    text = render(approval.required, context).strip()
    signers = render(approval.allowed_signers, context) if approval.allowed_signers else None
    if not text.isdigit():
        if paper and set(text) == {"_"}:  # a blank on paper: the number is filled in by hand
            return PlannedApproval(None, approval.from_, approval.timeout, signers)
        problem = template_problem(
            approval.required, f"approval.required must be a whole number ≥ 0, got {text!r}"
        )
        raise InvalidRunbook([problem])
    return PlannedApproval(int(text), approval.from_, approval.timeout, signers)
