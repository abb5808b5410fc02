"""A value inside a quoted shell string (`echo "a={{ app }}"`) is a warning of `validate` that says how to write
it (issue 23): the value is quoted for the shell already, so the quotes would be text."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.doublequoted import found
from engine.validation import validate


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ('echo "a={{ app }}"', [(1, "app")]),
        ("echo '{{ app }}'", [(1, "app")]),
        ('echo "it\'s {{ a }}"', [(1, "a")]),
        ('{% if a %}echo "{{ b }}"{% endif %}', [(1, "b")]),
        ('echo "\n{{ c }}"', [(2, "c")]),
        ('echo "\\"{{ a }}"', [(1, "a")]),
        ("echo a={{ app }}", []),
        ('echo "$(cat {{ f }})"', []),
        ('echo "{{ x | raw }}"', []),
        ('echo "x"{{ a }}"y"', []),
        ("echo \\'{{ a }}", []),
        ('cat <<EOF\n"{{ a }}"\nEOF\necho ok', []),
    ],
)
def test_values_inside_quotes(script: str, expected: list[tuple[int, str]]) -> None:
    assert list(found(script)) == expected


def test_validate_warns_and_says_how_to_write_it(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        'runbook: 1\nname: t\nversion: "1"\ntitle: T\nvariables:\n  app: {default: my app}\n'
        'steps:\n  - id: a\n    title: A\n    run: echo "a={{ app }}" b={{ app }}\n'
    )
    [warning] = [str(w) for w in validate(path, "rb.yml").warnings]
    assert warning == (
        "rb.yml:10:10: steps[0].run: warning: {{ app }} stands inside quotes, but a value is quoted for the shell "
        'already: a value with a space or a quote keeps those quotes as text ("a={{ x }}" gives "a=\'my value\'"); '
        "leave the quotes out (a={{ x }} is one word all the same)"
    )
