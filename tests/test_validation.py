"""`engine/validation.py`: every problem of a file at once, across the phases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import InvalidRunbook
from engine.validation import validate

ROOT = Path(__file__).resolve().parent.parent

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


BROKEN_KEYWORDS = {
    "type: strin": "variables.a.type",
    "type:": "variables.a.type",
    "pattern: '('": "variables.a.pattern",
    "minLength: x": "variables.a.minLength",
    "enum: 3": "variables.a.enum",
    "type: [string, strin]": "variables.a.type",
}


def _broken_keyword_runbook(keyword: str) -> str:
    return (
        "runbook: 1\nname: broken-keyword\nversion: '1'\ntitle: Broken keyword\nvariables:\n"
        f"  a:\n    {keyword}\n    default: x\nsteps:\n  - id: s\n    title: S\n    run: echo hi\n"
    )


@pytest.mark.parametrize("keyword", list(BROKEN_KEYWORDS))
def test_a_default_is_not_checked_against_a_broken_schema_keyword(tmp_path: Path, keyword: str) -> None:
    path = tmp_path / "book.yml"
    path.write_text(_broken_keyword_runbook(keyword))
    with pytest.raises(InvalidRunbook) as caught:
        validate(path, "book.yml")
    assert [(p.line, p.path) for p in caught.value.problems] == [(7, BROKEN_KEYWORDS[keyword])]


def test_a_default_is_still_checked_against_a_valid_fragment(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text(_broken_keyword_runbook("pattern: '^[0-9]+$'"))
    with pytest.raises(InvalidRunbook) as caught:
        validate(path, "book.yml")
    assert [(p.line, p.path) for p in caught.value.problems] == [(8, "variables.a.default")]


@pytest.mark.parametrize("task", ["validate", "plan", "run"])
def test_broken_keyword_with_a_default_exits_2_without_a_traceback(tmp_path: Path, task: str) -> None:
    path = tmp_path / "book.yml"
    path.write_text(_broken_keyword_runbook("type: strin"))
    found = subprocess.run(
        [sys.executable, "-m", "engine", task, str(path), *(["--yes"] if task == "run" else [])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert found.returncode == 2, found.stderr
    assert "Traceback" not in found.stderr
    assert f"{path}:7:11: variables.a.type" in found.stdout + found.stderr
