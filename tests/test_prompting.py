"""Values typed at a prompt: the rule broken said in words, asked again, a secret never echoed."""

from __future__ import annotations

import pytest

from engine import prompting
from engine.errors import Interrupted
from engine.model import Variable


def asked(variable: Variable, answers: list[str]) -> tuple[str, list[str]]:
    typed = iter(answers)
    said: list[str] = []
    return prompting.ask(variable, lambda _label: next(typed), said.append), said


@pytest.mark.parametrize(
    ("fragment", "text", "reason"),
    [
        ({"type": "string", "pattern": "^[a-z]+$"}, "A1", "it does not have the form this value needs"),
        ({"type": "integer", "maximum": 5}, "9", "it must be at most 5"),
        ({"type": "number", "exclusiveMinimum": 0}, "0", "it must be more than 0"),
        ({"type": "string", "minLength": 3}, "ab", "it must be at least 3 characters long"),
        ({"type": "string", "enum": ["blue", "green"]}, "red", "it must be one of: blue, green"),
        ({"type": "string", "format": "ipv4"}, "10.0.0.300", "it is not a valid ipv4"),
        ({"type": "boolean"}, "maybe", "it cannot be read as boolean: expected true or false"),
        ({"type": "array", "minItems": 2}, "[a]", "it needs at least 2 items"),
    ],
)
def test_the_rule_broken_in_words(fragment: dict[str, object], text: str, reason: str) -> None:
    assert prompting.explain(Variable("v", dict(fragment)), text) == reason


def test_a_wrong_value_is_asked_again_until_right() -> None:
    variable = Variable("port", {"type": "integer", "minimum": 1, "examples": [8080]}, "The port to open")
    value, said = asked(variable, ["0", "8443"])
    assert value == "8443"
    assert said == [
        "'0' is not valid: it must be at least 1. Wanted: The port to open (e.g. 8080); try again (2 more)"
    ]


def test_after_the_last_attempt_the_wrong_value_is_left_to_the_resolver() -> None:
    value, said = asked(Variable("n", {"type": "integer"}), ["x", "y", "z"])
    assert value == "z"
    assert (
        said[-1]
        == "'z' is not valid: it cannot be read as integer: expected an integer. Wanted: a value for n"
    )


def test_a_secret_typed_wrongly_is_never_shown() -> None:
    variable = Variable(
        "token", {"type": "string", "minLength": 20, "examples": ["x" * 20]}, "API token", secret=True
    )
    value, said = asked(variable, ["hunter2", "s3cr3t-t0ken-0123456789"])
    assert value == "s3cr3t-t0ken-0123456789"
    assert said == [
        "the value is not valid: it must be at least 20 characters long. Wanted: API token; try again (2 more)"
    ]
    assert "hunter2" not in " ".join(said)


def test_end_of_input_leaves_as_an_interruption() -> None:
    def closed(_label: str) -> str:
        raise EOFError

    with pytest.raises(Interrupted, match="no value for 'n' \\(end of input\\): nothing was run"):
        prompting.ask(Variable("n", {"type": "string"}), closed, lambda _line: None)


@pytest.mark.parametrize(
    ("schema", "secret", "label"),
    [
        ({"type": "integer", "examples": [3]}, False, "n (How many) [a whole number; e.g. 3]: "),
        ({"type": "string", "examples": ["snap-1"]}, False, "n (How many) [e.g. snap-1]: "),
        ({"type": "string", "examples": ["hunter2"]}, True, "n (How many): "),
        ({"type": "array"}, False, "n (How many) [a YAML list, e.g. [a, b]]: "),
    ],
)
def test_the_prompt_says_the_form_wanted_before_anything_is_typed(
    schema: dict[str, object], secret: bool, label: str
) -> None:
    """Issue 23: the kind of value and an example are in the question itself (never a secret's example)."""
    asked: list[str] = []
    variable = Variable("n", schema, description="How many", secret=secret)
    prompting.ask(variable, lambda text: asked.append(text) or "3", lambda _line: None)
    assert asked[0] == label
