"""The JSON Schema of the format, and its errors turned into located, fixable messages.

The schema is plain data (`schemas/runbook-v1.schema.json`); this module only translates jsonschema's
errors into what a runbook author can act on: every error at once, each at its line, with "did you mean"
for typos and "quote it" for values YAML read as numbers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from engine.errors import Problem
from engine.loading import JsonPath, Positions

SCHEMA_PATH = Path(__file__).with_name("runbook-v1.schema.json")
SUPPORTED_FORMATS = (1,)
_JSON_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing (null)",
}


@functools.cache
def schema() -> dict[str, Any]:
    """The runbook schema, read once."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def checked_formats() -> tuple[str, ...]:
    """The `format` values a variable may use: those jsonschema checks here (it would accept anything for
    another, such as hostname), listed in the schema so that editors refuse the others too."""
    formats: tuple[str, ...] = tuple(schema()["$defs"]["variable"]["properties"]["format"]["enum"])
    return formats


def validator(fragment: Mapping[str, Any] | None = None) -> jsonschema.protocols.Validator:
    """A 2020-12 validator (with format checks) for the whole schema or a variable's fragment."""
    cls = jsonschema.Draft202012Validator
    return cls(fragment if fragment is not None else schema(), format_checker=cls.FORMAT_CHECKER)


def usable_fragment(fragment: Mapping[str, Any]) -> bool:
    """Whether a variable's schema is itself valid JSON Schema (its regexes compile, its types exist).

    A broken keyword (`type: strin`, `pattern: '('`, `enum: 3`) is reported by the runbook schema at its
    line; checking a value against the broken fragment would only crash jsonschema, so values are checked
    against usable fragments only. Asked for the default when validating and again for each value given
    (`plan`, `run`), so the verdict is kept per fragment: checking against the metaschema is the dear part.
    """
    key = json.dumps(fragment, sort_keys=True, default=repr)
    if (usable := _USABLE.get(key)) is None:
        usable = _USABLE[key] = bool(_meta_validator().is_valid(fragment))
    return usable


_USABLE: dict[str, bool] = {}  # by fragment (as JSON text): as many as the runbooks' variables


@functools.cache
def _meta_validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.Draft202012Validator
    return cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)


def format_problem(data: Any, positions: Positions) -> Problem | None:
    """A format version we do not know: nothing else of the file can be judged by this schema."""
    if isinstance(data, dict) and "runbook" in data and data["runbook"] not in SUPPORTED_FORMATS:
        supported = ", ".join(str(v) for v in SUPPORTED_FORMATS)
        value = data["runbook"]
        return positions.problem(
            ("runbook",), f"unsupported format version {value!r}; supported: {supported}"
        )
    return None


def check(data: Any, positions: Positions) -> list[Problem]:
    """Every schema problem of a loaded runbook, located (`format_problem` first)."""
    if (unsupported := format_problem(data, positions)) is not None:
        return [unsupported]
    return locate(validator().iter_errors(data), positions, data)


def locate(errors: Iterable[jsonschema.ValidationError], positions: Positions, data: Any) -> list[Problem]:
    """Schema errors as problems at their file:line, in the file's order: a runbook's, or another file's
    checked by its own schema (a rehearsal's scenario)."""
    problems = [p for error in errors for p in _translate(error, positions, data)]
    return sorted(set(problems), key=lambda p: (p.line, p.column, p.path, p.message))


def describe_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _translate(error: jsonschema.ValidationError, positions: Positions, data: Any) -> Iterator[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        yield from _unknown_keys(error, path, positions)
    elif kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield positions.problem(path, f"{missing!r} is required")
    elif kind == "type":
        yield positions.problem(path, _type_message(error, positions.of(path).source))
    elif kind in ("oneOf", "anyOf"):
        yield from _one_of(error, path, positions, data)
    elif kind is None and "dependentSchemas" in error.relative_schema_path:
        yield from _not_allowed_with(error, path, positions, data)
    elif kind == "dependentRequired":
        yield positions.problem(path, error.message.replace("is a dependency of", "is needed with"))
    elif "propertyNames" in error.relative_schema_path:  # jsonschema reports the name's own failure
        name = _instance(error)
        yield positions.problem(
            (*path, name), f"invalid name {name!r}: names must match {rule_value(error)}", key=True
        )
    elif kind == "const" and error.validator_value is True:
        yield positions.problem(path, "must be true (or remove the key)")
    else:
        yield positions.problem(path, message(error))


def message(error: jsonschema.ValidationError) -> str:
    """The schema's own words for the rule where it has them (`patternErrorMessage`, `errorMessage`: the
    keywords editors show too), else jsonschema's message with a pattern shown as written."""
    own = _schema_of(error)
    said = own.get("patternErrorMessage") if error.validator == "pattern" else None
    if (said := said or own.get("errorMessage")) is not None:
        return f"{_instance(error)!r} is {said[0].lower()}{said[1:].rstrip('.')}"
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the pattern {error.validator_value}"
    return str(error.message)


def _not_allowed_with(
    error: jsonschema.ValidationError, path: JsonPath, positions: Positions, data: Any
) -> Iterator[Problem]:
    """Keys that a present key excludes (`dependentSchemas: {run: {properties: {manual: false}}}`), with the
    dependent schema's description saying why.

    jsonschema reports a `false` property schema at the mapping, not at the key (its path lacks the key), so
    the keys are found in the mapping itself."""
    schema_path = list(error.relative_schema_path)
    trigger = str(schema_path[schema_path.index("dependentSchemas") + 1])
    mapping = data
    for part in path:
        mapping = mapping[part]
    for node in schema()["$defs"].values():
        dependent = node.get("dependentSchemas", {}).get(trigger, {})
        excluded = [k for k, sub in dependent.get("properties", {}).items() if sub is False and k in mapping]
        why = str(dependent.get("description", "")).rstrip(".")
        for key in excluded:
            message = f"{key!r} is not allowed with {trigger!r}" + (f": {why}" if why else "")
            yield positions.problem((*path, key), message, key=True)


def _unknown_keys(
    error: jsonschema.ValidationError, path: JsonPath, positions: Positions
) -> Iterator[Problem]:
    known = list(_schema_of(error).get("properties", {}))
    for key in sorted(set(_instance(error)) - set(known)):
        import difflib  # only for an error's suggestion (~2 ms of every start)

        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(known)}"
        yield positions.problem((*path, key), f"unknown key {key!r}{hint}", key=True)


def _type_message(error: jsonschema.ValidationError, source: str | None) -> str:
    wanted = rule_value(error)
    names = [str(n) for n in (wanted if isinstance(wanted, list) else [wanted])]
    wanted_names = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    message = f"expected {wanted_names}, got {describe_type(error.instance)}"
    quotable = "string" in names and "pattern" not in _schema_of(error)  # quoted, it would be valid
    if quotable and source is not None and not isinstance(error.instance, str):
        message += f"; quote it: '{source}'"
    return message


def _one_of(
    error: jsonschema.ValidationError, path: JsonPath, positions: Positions, data: Any
) -> Iterator[Problem]:
    branches = rule_value(error)
    if all(set(branch) == {"required"} for branch in branches):
        if not isinstance(error.instance, dict):
            return  # not a mapping at all: the type error says so
        names = [branch["required"][0] for branch in branches]
        present = [name for name in names if isinstance(error.instance, dict) and name in error.instance]
        quoted = " or ".join(repr(n) for n in names)
        message = (
            f"exactly one of {quoted} is required"
            if not present
            else (f"{' and '.join(repr(n) for n in present)} cannot be used together; keep one")
        )
        yield positions.problem(path, message)
        return
    same_type = [e for e in error.context if e.validator != "type" and len(e.relative_schema_path) > 1]
    if same_type:  # the value has the right shape for one branch: report that branch's problems
        for sub in same_type:
            yield from _translate(sub, positions, data)
        return
    hint = _schema_of(error).get("description", "")
    yield positions.problem(path, f"invalid value {error.instance!r}: {hint}".rstrip(": "))


# jsonschema's error attributes are typed `… | Unset` (unset only on errors built by hand): these read them
# as the plain JSON values they are on errors from `iter_errors`.
def _instance(error: jsonschema.ValidationError) -> Any:
    return error.instance


def rule_value(error: jsonschema.ValidationError) -> Any:
    """The value of the keyword that failed (the pattern, the minimum…)."""
    return error.validator_value


def _schema_of(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}
