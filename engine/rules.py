"""Rules across values (`rules: [{assert, message}]`), checked as soon as the values are known.

A combination the runbook cannot do (`rotate_ca` together with `services`) is refused by `plan`, `run` and
`checklist` with the author's message and exit 2, before the lock, the warnings or any command: a check in
preflight would come after the operator confirmed the warnings, and a plan would show an impossible command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidRunbook, Problem
from engine.model import Runbook
from engine.rendering import evaluate, names_used, render, template_problem
from engine.variables import Values


def check(runbook: Runbook, values: Values, context: Mapping[str, Any]) -> None:
    """Raise every broken rule at once; a rule over a value not given (a blank checklist) is left for later."""
    problems: list[Problem] = []
    for rule in runbook.rules:
        if names_used("{{ " + rule.condition.text + " }}") & set(values.missing):
            continue
        if not evaluate(rule.condition, context, hidden=values.secret_values()):
            problems.append(template_problem(rule.condition, render(rule.message, context)))
    if problems:
        raise InvalidRunbook(problems)
