"""engine/reviewing.py: saved plans, in process: the review covers every Step field, a change is named."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_planning import DEMO, make_plan

from engine import model, reviewing
from engine.errors import UsageError
from engine.options import Options, prepare


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


ALIASED = """\
runbook: 1
name: aliased
version: "1"
title: Aliased
targets:
  db: {ssh: {hosts: [db-primary]}}
steps:
  - id: s
    title: S
    on: db
    run: "true"
"""


def test_a_resume_can_check_where_its_hosts_resolved_when_the_run_started(tmp_path: Path, home: Path) -> None:
    """`resolution_of` is what a run header can keep; `check_resolution` refuses once ~/.ssh/config moved
    the alias (no connection needed: where a name goes is decided before connecting)."""
    book = tmp_path / "aliased.yml"
    book.write_text(ALIASED)
    config = home / ".ssh" / "config"
    config.parent.mkdir(mode=0o700)
    config.write_text("Host db-primary\n  HostName 10.0.0.5\n  User deploy\n  Port 2222\n")
    plan = prepare(Options(str(book), environ={}))[1]
    recorded = reviewing.resolution_of(plan)
    assert recorded == {
        "db-primary": {
            "address": "10.0.0.5",
            "port": 2222,
            "user": "deploy",
            "keys": {},
            "agent": True,
            "via": [],
        }
    }
    reviewing.check_resolution(plan, recorded, "--resume R", "when the run started")
    config.write_text("Host db-primary\n  HostName 10.0.0.9\n  User deploy\n  Port 2222\n")
    with pytest.raises(UsageError) as caught:
        reviewing.check_resolution(plan, recorded, "--resume R", "when the run started")
    assert str(caught.value) == (
        "--resume R: hosts resolve elsewhere than when the run started: db-primary: address 10.0.0.5 → "
        "10.0.0.9. Check ~/.ssh/config: a Host alias may point elsewhere now"
    )
    with pytest.raises(UsageError, match="not recorded"):
        reviewing.check_resolution(plan, None, "--resume R", "when the run started")
