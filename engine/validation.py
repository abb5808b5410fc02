"""File → validated model: every check in order, every problem of the file reported at once.

The phases stop only where going on would produce noise: a file that is not YAML has no schema errors
worth listing, and a file of another format version has nothing else worth judging. Parts of a file that
fail the schema are left out of the model, and the other checks run on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import building, linting, loading, schema, variables
from engine.errors import InvalidRunbook, Problem
from engine.model import Runbook


@dataclass(frozen=True)
class Validated:
    runbook: Runbook
    warnings: tuple[Problem, ...]


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.path, p.message))


def validate(path: Path, display: str | None = None) -> Validated:
    """The runbook model and its lint warnings, or `InvalidRunbook` with every problem found."""
    document = loading.load(path, display)
    if (unsupported := schema.format_problem(document.data, document.positions)) is not None:
        raise InvalidRunbook([unsupported])  # another format: nothing else of it can be judged
    problems = schema.check(document.data, document.positions)
    if not isinstance(document.data, dict):
        raise InvalidRunbook(problems)
    runbook, found = building.build(document, tolerant=bool(problems))
    problems += found
    problems += variables.check_defaults(runbook)
    errors, warnings = linting.lint(runbook)
    problems += errors
    if problems:
        raise InvalidRunbook(_ordered(problems))
    return Validated(runbook, tuple(_ordered(warnings)))
