"""Rules across values (`rules: [{assert, message}]`), checked as soon as the values are known.

A combination the runbook cannot do (`rotate_ca` together with `services`) is refused by `plan`, `run` and
`checklist` with the author's message and exit 2, before the lock, the warnings or any command: a check in
preflight would come after the operator confirmed the warnings, and a plan would show an impossible command.

A rule that reads `targets` (each target's `hosts` and the `inventory` document its hosts came from) is
checked as soon as the targets are resolved, still before anything runs: so a runbook refuses at plan time
what its own tool would refuse (rke's checks of a cluster file), or a host list naming a host the inventory
does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidRunbook, Problem
from engine.model import Rule, Runbook
from engine.rendering import evaluate, names_used, render, template_problem
from engine.variables import Values

if TYPE_CHECKING:  # `validate` imports this module and must not pay for the targets (and executors)
    from engine.targets import ResolvedTarget

TARGETS = "targets"


def check(
    runbook: Runbook,
    values: Values,
    context: Mapping[str, Any],
    targets: Mapping[str, ResolvedTarget] | None = None,
) -> None:
    """Raise every broken rule at once; a rule over a value not given (a blank checklist) is left for later.

    Without `targets`, the rules that read no target; with them, the rules that do."""
    problems = [problem for _, problem in broken(runbook, values, context, targets)]
    if problems:
        raise InvalidRunbook(problems)


def broken(
    runbook: Runbook,
    values: Values,
    context: Mapping[str, Any],
    targets: Mapping[str, ResolvedTarget] | None = None,
) -> list[tuple[Rule, Problem]]:
    """The rules `check` would refuse, each with its problem (its message, at its line)."""
    found: list[tuple[Rule, Problem]] = []
    scope = {**context, TARGETS: seen_targets(targets)} if targets is not None else context
    for rule in runbook.rules:
        used = reads(rule)
        if (TARGETS in used) != (targets is not None) or used & set(values.missing):
            continue
        if not evaluate(rule.condition, scope, hidden=values.secret_values()):
            found.append((rule, template_problem(rule.condition, render(rule.message, scope))))
    return found


def reads(rule: Rule) -> frozenset[str]:
    """The names a rule reads, in its assert or its message."""
    return names_used("{{ " + rule.condition.text + " }}") | names_used(rule.message.text)


def seen_targets(targets: Mapping[str, ResolvedTarget]) -> dict[str, Any]:
    """`targets.<name>` as a rule reads it: its `hosts` (name, address, user, port, vars: the inventory
    entry) and its `inventory`, the whole document its hosts were read from (`{}` when the target has no
    inventory or `--hosts` replaced its entries)."""
    return {
        name: {"hosts": [host.context() for host in target.hosts], "inventory": target.inventory}
        for name, target in targets.items()
    }
