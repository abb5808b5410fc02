"""File → validated model: every check in order, every problem of the file reported at once.

The phases stop only where going on would produce noise: a file that is not YAML has no schema errors
worth listing, and a file of another format version has nothing else worth judging. Parts of a file that
fail the schema are left out of the model, and the other checks run on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import building, linting, loading, schema, using, variables
from engine.errors import InvalidRunbook, Problem
from engine.model import Runbook


@dataclass(frozen=True)
class Validated:
    """A valid runbook's model, with the lint warnings that do not make it invalid."""

    runbook: Runbook
    warnings: tuple[Problem, ...]


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.path, p.message))


def validate(path: Path, display: str | None = None) -> Validated:
    """The runbook model and its lint warnings, or `InvalidRunbook` with every problem found."""
    runbook, problems, warnings = _validate(path, display, (path.resolve(),))
    if problems:
        raise InvalidRunbook(_ordered(problems))
    return Validated(runbook, tuple(_ordered(warnings)))


def _used(path: Path, display: str, stack: tuple[Path, ...]) -> tuple[Runbook | None, list[Problem]]:
    """A runbook used by another (`use:`): its problems join the user's, with their own file and line."""
    try:
        runbook, problems, _warnings = _validate(path, display, stack)
    except InvalidRunbook as error:
        return None, list(error.problems)  # not a runbook at all: the step stays unread
    return runbook, problems


def _validate(
    path: Path, display: str | None, stack: tuple[Path, ...]
) -> tuple[Runbook, list[Problem], list[Problem]]:
    document = loading.load(path, display)
    if (unsupported := schema.format_problem(document.data, document.positions)) is not None:
        raise InvalidRunbook([unsupported])  # another format: nothing else of it can be judged
    problems = schema.check(document.data, document.positions)
    if not isinstance(document.data, dict):
        raise InvalidRunbook(problems)
    runbook, found = building.build(document, tolerant=bool(problems))
    problems += found
    runbook, found = using.attach(runbook, stack, _used)
    problems += found + using.check_given(runbook)
    problems += variables.check_defaults(runbook)
    errors, warnings = linting.lint(runbook)
    problems += errors
    return runbook, problems, warnings
