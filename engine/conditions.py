"""`when:` conditions of a planned step: its group's and its own, decided now or when the step is reached.

A condition that reads `steps.` (earlier outputs) or `platform` (a host not reached yet) cannot be decided
when the plan is made: the step is then rendered again when it is reached, and decided with what is known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.model import Template
from engine.rendering import names_used


def skipped(
    whens: tuple[Template, ...],
    context: Mapping[str, Any],
    steps_unknown: bool,
    platform: str | None,
    holds: Callable[[Template, Mapping[str, Any]], Any],
) -> tuple[str | None, bool]:
    """Why the step is skipped (the first false condition, as written: never the values it read), and
    whether that can only be decided later; `holds` evaluates one condition (secrets masked)."""
    for when in whens:
        unknown = names_used("{{" + when.text + "}}")
        if ("steps" in unknown and steps_unknown) or ("platform" in unknown and not platform):
            return None, True
        if not holds(when, context):
            return f"when: {when.text} is false", False
    return None, False
