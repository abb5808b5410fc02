"""engine/reviewing.py: saved plans, in process: the review covers every Step field, a change is named."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_planning import DEMO, make_plan

from engine import model, reviewing
from engine.errors import UsageError


def test_every_step_field_is_reviewed_or_deliberately_outside_the_review() -> None:
    fields = {f.name for f in dataclasses.fields(model.Step)}
    reviewed, outside = set(reviewing.STEP_REVIEW), set(reviewing.NOT_REVIEWED)
    missing = sorted(fields - reviewed - outside)
    assert not missing, (
        f"model.Step has field(s) {missing} that the reviewed plan neither covers nor excludes. For each, in "
        "engine/reviewing.py: add it to STEP_REVIEW with the entries it puts in a saved plan (anything that "
        "changes what runs, where, how or when: commands, hosts, timeouts, answers), or to NOT_REVIEWED "
        "with the reason it cannot change a run. Then `plan --save` and `run --plan` cover it."
    )
    assert not reviewed & outside, f"both reviewed and outside the review: {sorted(reviewed & outside)}"
    assert not (reviewed | outside) - fields, f"no such Step field: {sorted((reviewed | outside) - fields)}"


def test_a_saved_plan_is_accepted_and_a_changed_one_names_the_step(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    digest = reviewing.save(make_plan(DEMO, {"marker": "m"}), saved)
    assert json.loads(saved.read_text())["sha256"] == digest
    reviewing.check(make_plan(DEMO, {"marker": "m"}), saved)  # the same plan: accepted
    changed = reviewing.differences(make_plan(DEMO, {"marker": "other"}), reviewing.load(saved))
    assert changed is not None and changed.startswith("steps that differ: ")
    with pytest.raises(UsageError, match="today's plan is not the reviewed one"):
        reviewing.check(make_plan(DEMO, {"marker": "other"}), saved)


def test_an_unreadable_saved_plan_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]")
    for path in (tmp_path / "missing.json", tmp_path / "bad.json"):
        with pytest.raises(UsageError, match="cannot read a saved plan"):
            reviewing.load(path)
