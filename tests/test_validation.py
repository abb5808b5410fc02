"""`engine/validation.py`: every problem of a file at once, across the phases."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidRunbook
from engine.validation import validate

BROKEN = """\
runbook: 1
name: broken
version: 1.10
title: Broken
variables:
  count: {type: integer, default: "x"}
steps:
  - id: a
    title: A
    timout: 5
    run: echo {{ cuont }}
  - id: a
    title: B
    on: nodes
    run: docker ps --format '{{.Names}}'
  - just a string
  - id: c
    title: C
    run: echo hi
    manual: do it
"""


def test_schema_problems_do_not_hide_the_others(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN)
    with pytest.raises(InvalidRunbook) as caught:
        validate(path, "broken.yml")
    found = [(p.line, p.column, p.path, p.message.split(";")[0]) for p in caught.value.problems]
    assert found == [
        (3, 10, "version", "expected string, got a number"),
        (6, 35, "variables.count.default", "'x' is not of type 'integer'"),
        (10, 5, "steps[0].timout", "unknown key 'timout'"),
        (11, 10, "steps[0].run", "undefined name 'cuont'"),
        (12, 9, "steps[1].id", "duplicate step id 'a' (first used at line 8)"),
        (14, 9, "steps[1].on", "unknown target 'nodes'"),
        (15, 10, "steps[1].run", "this looks like a Go/docker template ({{.Field}})"),
        (16, 5, "steps[2]", "expected object, got a string"),
        (
            20,
            5,
            "steps[3].manual",
            "'manual' is not allowed with 'run': a step runs a command or is manual, "
            "not both (record is for manual steps)",
        ),
    ]


def test_an_unknown_format_version_is_the_only_problem_reported(tmp_path: Path) -> None:
    path = tmp_path / "future.yml"
    path.write_text(BROKEN.replace("runbook: 1", "runbook: 2"))
    with pytest.raises(InvalidRunbook) as caught:
        validate(path, "future.yml")
    assert [str(p) for p in caught.value.problems] == [
        "future.yml:1:10: runbook: unsupported format version 2; supported: 1"
    ]
