"""Fuzzing: whole hostile documents through validate and plan, in process. Every outcome is a model or a
list of located problems (exit 0 or 2 with `file:line`), never another exception (a traceback, exit 70).

Bounded in the suite (`RUNBOOK_FUZZ_EXAMPLES`, default 40 documents); `invoke fuzz` runs thousands.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fuzzing import documents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InvalidRunbook, RunbookError, exit_code
from engine.model import Runbook
from engine.options import Options, prepare
from engine.validation import validate
from engine.variables import resolve

EXAMPLES = int(os.environ.get("RUNBOOK_FUZZ_EXAMPLES", "40"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,  # the same documents in every CI run; `invoke fuzz` explores
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(text=documents())
def test_a_hostile_document_is_a_model_or_located_problems(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        validate(path, "fuzz.yml")
        prepare(Options(file=str(path), environ={}))
    except InvalidRunbook as error:
        located = [p for p in error.problems if p.file in ("fuzz.yml", str(path))]
        assert located, [str(p) for p in error.problems]
        assert all(p.line >= 1 for p in located), [str(p) for p in located]
    except RunbookError as error:
        assert exit_code(error) == 2, str(error)


VALUES_RUNBOOK = """\
runbook: 1
name: values
version: "1"
title: Values
variables:
  count: {type: integer, minimum: 1, default: 1}
  ratio: {type: number, default: 0.5}
  flag: {type: boolean, default: false}
  hosts: {type: array, default: []}
  extra: {type: object, default: {}}
  release: {type: string, pattern: '^[a-z0-9-]+$', default: r1}
  when: {type: string, format: date, default: "2026-11-30"}
steps:
  - id: s
    title: S
    run: echo {{ count }} {{ release }}
"""

_VALUE_TEXT = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=1, max_value=2000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(min_value=1, max_value=2000).map(lambda depth: "{a: " * depth + "1" + "}" * depth),
    st.sampled_from(
        ["1e999", "-0", "nan", "inf", "0x1F", "1_000", "yes", "~", "&a [*a]", "!!python/object:os.system x"]
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100)
@given(
    values=st.dictionaries(
        st.sampled_from(["count", "ratio", "flag", "hosts", "extra", "release", "when"]), _VALUE_TEXT
    )
)
def test_hostile_values_are_converted_or_refused(values: dict[str, str]) -> None:
    runbook = _values_runbook()
    try:
        resolve(runbook, {}, environ={f"RUNBOOK_VAR_{k.upper()}": v for k, v in values.items()})
    except InvalidRunbook as error:
        assert all(p.path.startswith("RUNBOOK_VAR_") for p in error.problems), [
            str(p) for p in error.problems
        ]


def _values_runbook() -> Runbook:
    global _VALUES
    if _VALUES is None:
        path = Path(tempfile.mkdtemp()) / "values.yml"
        path.write_text(VALUES_RUNBOOK)
        _VALUES = validate(path, "values.yml").runbook
    return _VALUES


_VALUES: Runbook | None = None
