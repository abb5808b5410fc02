"""Values typed at the terminal before a run: checked at once, explained in words, asked again.

A person who mistypes a value at 3 a.m. should be told what is wrong in the terms of the runbook (the
variable's description, the rule it broke: "must be at least 1", never a raw regular expression) and be
asked again, a few times at most; the last wrong answer is then reported with every other problem, and
nothing runs. Ctrl-D leaves as Ctrl-C does: cleanly, before anything ran.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Any

import jsonschema

from engine import schema, variables
from engine.errors import Interrupted
from engine.masking import secret_problem
from engine.model import Variable

ATTEMPTS = 3


def rule_in_words(error: jsonschema.ValidationError) -> str:
    """What a value must be, for the rule jsonschema found broken, said without the value."""
    kind, limit = error.validator, schema.rule_value(error)
    words: dict[Any, Callable[[], str]] = {
        "pattern": lambda: "it does not have the form this value needs",
        "minimum": lambda: f"it must be at least {limit}",
        "maximum": lambda: f"it must be at most {limit}",
        "exclusiveMinimum": lambda: f"it must be more than {limit}",
        "exclusiveMaximum": lambda: f"it must be less than {limit}",
        "multipleOf": lambda: f"it must be a multiple of {limit}",
        "minLength": lambda: f"it must be at least {limit} character{'s' if limit != 1 else ''} long",
        "maxLength": lambda: f"it must be at most {limit} character{'s' if limit != 1 else ''} long",
        "enum": lambda: "it must be one of: " + ", ".join(str(v) for v in limit),
        "const": lambda: f"it must be {limit}",
        "format": lambda: f"it is not a valid {limit}",
        "minItems": lambda: f"it needs at least {limit} item{'s' if limit != 1 else ''}",
        "maxItems": lambda: f"it may have at most {limit} item{'s' if limit != 1 else ''}",
        "type": lambda: f"it must be of type {limit}",
    }
    return words[kind]() if kind in words else str(error.message)


def explain(variable: Variable, text: str) -> str | None:
    """Why `text` is not a valid value of `variable`, in words; None when it is valid."""
    try:
        value = variables.convert(text, variable)
    except ValueError as unreadable:
        return f"it cannot be read as {variable.type}: {unreadable}"
    if schema.usable_fragment(variable.schema):
        for broken in schema.validator(variable.schema).iter_errors(value):
            return rule_in_words(broken)
    if variable.secret and isinstance(value, str) and (reason := secret_problem(value)):
        return reason
    return None


def ask(
    variable: Variable,
    read: Callable[[str], str] | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """The value typed for `variable`, asked again (up to ATTEMPTS times) while it is not valid."""
    read = read or (getpass.getpass if variable.secret else input)
    say = say or (lambda line: print(line, file=sys.stderr))
    label = variable.name + (f" ({variable.description})" if variable.description else "") + _form(variable)
    example = variable.schema.get("examples")
    text = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            text = read(f"{label}: ")
        except EOFError:
            say("")
            raise Interrupted(f"no value for {variable.name!r} (end of input): nothing was run") from None
        reason = explain(variable, text)
        if reason is None:
            return text
        shown = "the value" if variable.secret else repr(text)
        what = variable.description or f"a value for {variable.name}"
        hint = (
            f" (e.g. {example[0]})" if isinstance(example, list) and example and not variable.secret else ""
        )
        again = f"; try again ({ATTEMPTS - attempt} more)" if attempt < ATTEMPTS else ""
        say(f"{shown} is not valid: {reason}. Wanted: {what}{hint}{again}")
    return text  # still wrong: reported with every other problem, and nothing runs


_KINDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a YAML list, e.g. [a, b]",
    "object": "a YAML mapping, e.g. {a: 1}",
}


def _form(variable: Variable) -> str:
    """What the prompt says of the form wanted, before anything is typed: the kind of value, an example."""
    example = variable.schema.get("examples")
    parts = [_KINDS[variable.type]] if variable.type in _KINDS else []
    if isinstance(example, list) and example and not variable.secret:
        parts.append(f"e.g. {example[0]}")
    return f" [{'; '.join(parts)}]" if parts else ""
