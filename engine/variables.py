"""Variable values: where they come from, their types, and their validation, all before anything runs.

Sources, strongest first: `--var name=value`, `--vars-file FILE`, `RUNBOOK_VAR_<NAME>`, the default. Text
from the command line or the environment is converted to the declared type. Every problem with every
value is reported together, and a secret's value never appears in any message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import loading, schema
from engine.errors import InvalidRunbook, Problem, UsageError
from engine.masking import MASK, secret_problem
from engine.model import Runbook, Variable

ENV_PREFIX = "RUNBOOK_VAR_"
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

Prompter = Callable[[Variable], str]


@dataclass(frozen=True)
class Values:
    """The resolved values of a run; `missing` lists required names left blank (checklists only)."""

    values: Mapping[str, Any]
    secrets: frozenset[str] = frozenset()
    sources: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    def masked(self) -> dict[str, Any]:
        """Values safe to print or journal."""
        return {k: (MASK if k in self.secrets else v) for k, v in self.values.items()}

    def secret_values(self) -> list[str]:
        return [str(self.values[name]) for name in self.secrets if name in self.values]


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """`["a=1", "b=x=y"]` → `{"a": "1", "b": "x=y"}`; a missing `=` is a usage error."""
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {item!r}: expected name=value")
        result[name.strip()] = value
    return result


def convert(text: str, variable: Variable) -> Any:
    """Command-line text → the declared JSON type; a ValueError names what was expected."""
    kind = variable.type
    if kind in ("integer", "number"):
        try:
            return int(text) if kind == "integer" else float(text)
        except ValueError:  # Python's own message repeats the text, which may be a secret
            raise ValueError(f"expected {'an integer' if kind == 'integer' else 'a number'}") from None
    if kind == "boolean":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected true or false")
    if kind in ("array", "object"):
        try:  # our loader: no aliases or tags, and nesting bounded (yaml.safe_load recursed until it crashed)
            value, _ = loading.parse(text, "value")
        except InvalidRunbook as error:
            if any(p.message == loading.NUL_MESSAGE for p in error.problems):
                raise ValueError(loading.NUL_MESSAGE) from None
            value = None
        if not isinstance(value, list if kind == "array" else dict):
            raise ValueError(
                f"expected a YAML {'list, e.g. [a, b]' if kind == 'array' else 'mapping, e.g. {a: 1}'}"
            )
        return value
    return text


def problems_of(variable: Variable, value: Any, where: Problem) -> list[Problem]:
    """Every schema problem of one value, phrased without the value when it is secret."""
    found: list[Problem] = []
    if not schema.usable_fragment(variable.schema):
        return found  # the schema phase reported the broken keyword at its line
    for error in schema.validator(variable.schema).iter_errors(value):
        message = schema.message(error) if not variable.secret else f"the value fails {error.validator!r}"
        if variable.description and error.validator in ("pattern", "enum", "format"):
            message += f" ({variable.description})"
        found.append(Problem(where.file, where.line, where.column, where.path, message))
    if variable.secret and isinstance(value, str) and (reason := secret_problem(value)):
        found.append(Problem(where.file, where.line, where.column, where.path, reason))
    if _holds_nul(value):  # typed at a prompt, or recorded: a file's own NUL is refused when it is loaded
        found.append(Problem(where.file, where.line, where.column, where.path, loading.NUL_MESSAGE))
    return found


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return loading.NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_nul(v) for v in value)


def check_defaults(runbook: Runbook) -> list[Problem]:
    """A default that fails its own variable's schema is a bug in the runbook: report it at its line."""
    positions = runbook.document.positions
    found = []
    for variable in runbook.variables:
        if variable.has_default:
            where = positions.problem(("variables", variable.name, "default"), "")
            found += problems_of(variable, variable.default, where)
    return found


class _Resolver:
    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.given: set[str] = set()
        self.problems: list[Problem] = []

    def text_values(
        self, items: Mapping[str, str], source: str, label: Callable[[str], str], in_argv: bool = False
    ) -> None:
        for name, text in items.items():
            where = Problem(source, 0, 0, label(name), "")
            variable = self._known(name, where)
            if variable is None or name in self.given:
                continue
            self.given.add(name)
            if variable.secret and in_argv:
                self.problems.append(
                    _at(
                        where,
                        f"a secret on the command line is visible to anyone on this machine "
                        f"(ps, /proc) and stays in the shell history; pass it as "
                        f"{ENV_PREFIX}{name.upper()}=… in the environment, in a --vars-file, "
                        "or type it when asked (at a terminal)",
                    )
                )
                continue
            try:
                self._take(variable, convert(text, variable), source, where)
            except ValueError as error:
                shown = "" if variable.secret else f" {text!r}"
                self.problems.append(_at(where, f"cannot read{shown} as {variable.type}: {error}"))

    def file_values(self, path: Path) -> None:
        document = loading.load(path)
        if not isinstance(document.data, dict):
            self.problems.append(document.positions.problem((), "a vars file is a mapping of name: value"))
            return
        for name, value in document.data.items():
            where = document.positions.problem((name,), "", key=True)
            variable = self._known(name, where)
            if variable is not None and name not in self.given:
                self.given.add(name)
                self._take(variable, value, f"vars file {path}", where)

    def recorded_values(self, values: Mapping[str, Any], source: str) -> None:
        """Typed values recorded earlier (a resumed run's journal), checked again against today's schema."""
        for name, value in values.items():
            where = Problem(source, 0, 0, name, "")
            variable = self._known(name, where)
            if variable is not None and name not in self.given and not variable.secret:
                self.given.add(name)
                self._take(variable, value, source, where)

    def _known(self, name: str, where: Problem) -> Variable | None:
        variable = self.runbook.variable(name)
        if variable is None:
            names = [v.name for v in self.runbook.variables]
            import difflib  # only for an error's suggestion (~2 ms of every start)

            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; variables: {', '.join(names) or 'none'}"
            self.problems.append(_at(where, f"unknown variable {name!r}{hint}"))
        return variable

    def _take(self, variable: Variable, value: Any, source: str, where: Problem) -> None:
        found = problems_of(variable, value, where)
        self.problems += found
        if not found:
            self.values[variable.name] = value
            self.sources[variable.name] = source


def _at(where: Problem, message: str) -> Problem:
    return Problem(where.file, where.line, where.column, where.path, message)


def resolve(
    runbook: Runbook,
    cli: Mapping[str, str],
    vars_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompter | None = None,
    allow_missing: bool = False,
    recorded: Mapping[str, Any] | None = None,
    given: Mapping[str, Any] | None = None,
    given_at: Callable[[str], Problem] | None = None,
    given_by: str = "",
) -> Values:
    """Every value of the run, validated; all problems raised together as `InvalidRunbook`.

    `given` are typed values a using runbook passes (`with:`), each located by `given_at(name)`.
    """
    resolver = _Resolver(runbook)
    resolver.text_values(cli, "command line", lambda n: f"--var {n}", in_argv=True)
    for name, value in (given or {}).items():
        where = given_at(name) if given_at else Problem("", 0, 0, name, "")
        if (variable := resolver._known(name, where)) is not None:
            resolver.given.add(name)
            resolver._take(variable, value, f"with: of step {given_by}", where)
    if recorded:
        resolver.recorded_values(recorded, "journal of the resumed run")
    if vars_file is not None:
        resolver.file_values(vars_file)
    environ = os.environ if environ is None else environ
    from_env = {
        v.name: environ[ENV_PREFIX + v.name.upper()]
        for v in runbook.variables
        if ENV_PREFIX + v.name.upper() in environ
    }
    resolver.text_values(from_env, "environment", lambda n: ENV_PREFIX + n.upper())
    missing = []
    for variable in runbook.variables:
        if variable.name in resolver.given:
            continue
        if variable.has_default:
            resolver.values[variable.name] = variable.default
            resolver.sources[variable.name] = "default"
        elif variable.required and prompt is not None:
            resolver.text_values({variable.name: prompt(variable)}, "prompt", lambda n: n)
        elif variable.required:
            missing.append(variable)
    if missing and not allow_missing:
        resolver.problems += [
            _missing(runbook, v)
            if given_at is None
            else _at(given_at(v.name), f"{runbook.name} requires {v.name!r}: give it in with:")
            for v in missing
        ]
    if resolver.problems:
        raise InvalidRunbook(resolver.problems)
    # Only secrets with a value: one left unset is undefined in templates, like any other variable.
    secrets = frozenset(v.name for v in runbook.variables if v.secret and v.name in resolver.values)
    return Values(resolver.values, secrets, resolver.sources, tuple(v.name for v in missing))


def secrets_as_references(runbook: Runbook, values: Values) -> Values:
    """For an export: every secret stays a reference, given now or not (the export reads it where it runs);
    any other required value must be given now, since it is rendered into the exported commands."""
    missing = [v for v in runbook.variables if v.name in values.missing and not v.secret]
    if missing:
        raise InvalidRunbook([_missing(runbook, v) for v in missing])
    secrets = frozenset(v.name for v in runbook.variables if v.secret)
    return replace(values, secrets=secrets, missing=())


def _missing(runbook: Runbook, variable: Variable) -> Problem:
    hint = f" ({variable.description})" if variable.description else ""
    how = f"--var {variable.name}=…, a vars file or {ENV_PREFIX}{variable.name.upper()}"
    return runbook.document.positions.problem(
        ("variables", variable.name),
        f"no value given for required variable {variable.name!r}{hint}; pass {how}",
        key=True,
    )
