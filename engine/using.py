"""`use:` a runbook from a step: reading the used file (once, cycles refused) and filling its values.

Composition happens in the model, not by copying text: the used runbook is validated by its own rules
(its own file and lines in every error), its variables are filled from `with:` and checked by its own
schema, and its steps join the plan under the using step's id (`snapshot/save`), so the plan, the run,
the journal and the checklist show what runs, where it comes from, and the sha256 of the file it came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import rules, variables
from engine.errors import Problem
from engine.model import Runbook, Step, Template, Variable
from engine.rendering import evaluate, render, template_problem
from engine.variables import Values

Validate = Callable[[Path, str, tuple[Path, ...]], tuple[Runbook | None, list[Problem]]]


def attach(runbook: Runbook, stack: tuple[Path, ...], validate: Validate) -> tuple[Runbook, list[Problem]]:
    """The runbook with each `use:` step's file read and validated; a cycle or a missing file is a problem."""
    problems: list[Problem] = []
    steps = []
    for step in runbook.steps:
        use = step.use
        if use is None:
            steps.append(step)
            continue
        file = use.file.resolve()
        if file in stack:
            chain = " uses ".join(_shown(p) for p in (*stack[stack.index(file) :], file))
            problems.append(template_problem(use.path, f"a cycle: {chain}"))
        elif not file.is_file():
            problems.append(template_problem(use.path, f"no such runbook: {_shown(use.file)}"))
        else:
            used, found = validate(use.file, _shown(use.file), (*stack, file))
            problems += found
            if used is not None:
                step = replace(step, use=replace(use, runbook=used))
        steps.append(step)
    return replace(runbook, steps=tuple(steps)), problems


def _shown(path: Path) -> str:
    """A path as the operator reads it: relative to where they are, when it is below."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def unit_ids(step: Step) -> Iterator[str]:
    """The ids a step adds to `steps.` for the steps after it: its own, and each used step's under it."""
    yield step.id
    for (
        inner
    ) in step.steps:  # a group's: `steps.drain` is its latest run's, `steps['upgrade[n1]/drain']` one's
        yield from (inner.id, f"{step.id}/{inner.id}")
    used = step.use.runbook if step.use else None
    for inner in used.steps if used else ():
        yield from (f"{step.id}/{unit}" for unit in unit_ids(inner))


def used_values(
    runbook: Runbook, step: Step, context: Mapping[str, Any], allow_missing: bool
) -> tuple[Values, dict[str, Any]]:
    """The used runbook's values from `with:` (rendered with this runbook's values), checked by its own
    schema and rules, and its targets resolved with them."""
    assert step.use is not None and step.use.runbook is not None
    used = step.use.runbook
    given = {
        name: _given(value, used.variable(name), context) if isinstance(value, Template) else value
        for name, value in step.use.with_
    }
    positions = runbook.document.positions

    def where(name: str) -> Problem:
        return positions.problem(("steps", step.index, "with", name), "")

    values = variables.resolve(
        used, {}, environ={}, allow_missing=allow_missing, given=given, given_at=where, given_by=step.id
    )
    known = {
        **values.values,
        "platform": context.get("platform") if isinstance(context.get("platform"), str) else "",
        "runbook": used.context(),
    }
    rules.check(used, values, known)
    # Imported here, not at the top: `validate` imports this module and must not pay for the executors.
    from engine import targets

    resolved = targets.resolve(used, known)
    rules.check(used, values, known, resolved)
    return values, resolved


_ONE_EXPRESSION = re.compile(r"\{\{-?((?:(?!\}\}).)*?)-?\}\}", re.S)


def _given(value: Template, variable: Variable | None, context: Mapping[str, Any]) -> Any:
    """A `with:` value: one `{{ expression }}` passes its value as it is (a number stays a number, a list a
    list); other text is rendered, then read as the used variable's type, as command-line text is."""
    whole = _ONE_EXPRESSION.fullmatch(value.text.strip())
    if whole is not None:
        found = evaluate(replace(value, text=whole.group(1).strip()), context)
        if _plain(found):
            return found
    text = render(value, context)
    if variable is None or variable.type in (None, "string"):
        return text
    try:
        return variables.convert(text, variable)
    except ValueError:
        return text  # the used runbook's schema says what is wrong with it, at the with: line


def _plain(value: Any) -> bool:
    """Data a variable can hold (not a secret's reference, a blank or a value known only at run time)."""
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return value is None or type(value) in (str, int, float, bool)


def check_given(runbook: Runbook) -> list[Problem]:
    """`with:` names that the used runbook does not have, found at validation (before any value is known)."""
    problems = []
    for step in runbook.steps:
        used = step.use.runbook if step.use else None
        if used is None or step.use is None:
            continue
        names = {v.name for v in used.variables}
        for name, _ in step.use.with_:
            if name not in names:
                known = ", ".join(sorted(names)) or "none"
                message = f"{used.name} has no variable {name!r}; its variables: {known}"
                problems.append(
                    runbook.document.positions.problem(("steps", step.index, "with", name), message)
                )
    return problems
