"""engine/stepview.py: one view of a step for people, read by `plan` and the checklist alike.

Like tests/test_reviewing.py for the saved plan: every field the review covers (`reviewing.STEP_REVIEW`) must
show in what a person reads in `runbook plan`, and a field added to the review without a way to see it fails
here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import reviewing
from runbooks import in_process

HEAD = {
    "runbook": 1,
    "name": "facts",
    "version": "1",
    "title": "Facts",
    "targets": {
        "here": {"local": True},
        "web": {"ssh": {"hosts": ["a.example.com", "b.example.com", "c.example.com"]}},
    },
}
STEP: dict[str, Any] = {"id": "probe", "title": "Probe", "on": "here", "run": "echo probe"}
INNER = {"id": "inner", "title": "Inner", "run": "echo inner"}
BY_HAND = {"run": None, "manual": "Read the version on the dashboard."}

CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any] | None]] = {
    # field: (what the step sets, what `plan` then shows, the step to compare with if not the same without it)
    "id": ({"id": "renamed"}, "renamed: Probe", None),
    "title": ({"title": "Renamed"}, "probe: Renamed", None),
    "on": ({"on": "web"}, "[on web (3 hosts)", None),
    "run": ({"run": "echo changed"}, "$ echo changed", None),
    "cwd": ({"cwd": "/srv/app"}, "(cwd /srv/app)", None),
    "env": ({"env": {"MODE": "fast"}}, "env: MODE=fast", None),
    "timeout": ({"timeout": "90s"}, "timeout 90 s", None),
    "retries": ({"retries": {"count": 2, "delay": "5s"}}, "retries 2, every 5 s", None),
    "shell": ({"shell": "bash"}, "shell bash", None),
    "expect": (
        {"expect": {"exit_code": [0, 3], "stdout_contains": "ok"}},
        'expects exit code 0 or 3, stdout containing "ok"',
        None,
    ),
    "continue_on_error": ({"continue_on_error": True}, "continues on error", None),
    "max_failed_hosts": ({"on": "web", "max_failed_hosts": 1}, "up to 1 failed hosts allowed", None),
    "concurrency": ({"on": "web", "concurrency": 2}, "2 at a time", None),
    "confirm": ({"confirm": "Is the window open?"}, "confirm: Is the window open?", None),
    "manual": (BY_HAND, "MANUAL: Read the version on the dashboard.", STEP),
    "record": (
        {**BY_HAND, "record": {"prompt": "Version seen", "expect": "v1"}},
        "record: Version seen — expected v1",
        {**STEP, **BY_HAND},
    ),
    "result": ({"result": "the probe answered"}, "result: the probe answered", None),
    "when": ({"when": "runbook.name == 'facts'"}, "only when runbook.name == 'facts'", None),
    "run_once": ({"on": "web", "run_once": True}, "once: on the first host not left out", None),
    "until": ({"until": "result.exit_code == 0"}, "until result.exit_code == 0", None),
    "deadline": ({"deadline": "2m"}, "deadline 2 min", None),
    "loop": ({"loop": ["x", "y"]}, "probe[2]: Probe (item 2/2: y)", None),
    "approval": (
        {"approval": {"required": 2, "from": ["dba"], "timeout": "30m"}},
        "needs 2 approval(s) by other operators (members of dba), waits 30 min",
        None,
    ),
    "steps": ({"run": None, "on": "local", "steps": [INNER]}, "1.1. probe/inner: Inner", STEP),
    "serial": (
        {"run": None, "on": "web", "serial": 2, "steps": [INNER]},
        "1.1. probe[c.example.com]/inner: Inner (batch 2/2: c.example.com)",
        None,
    ),
}


def _plan(tmp_path: Path, step: dict[str, Any]) -> str:
    book = tmp_path / "facts.yml"
    shown = {k: v for k, v in step.items() if v is not None}
    book.write_text(yaml.safe_dump({**HEAD, "steps": [shown]}, sort_keys=False), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    done = in_process(["plan", str(book), "--platform", "linux"], tmp_path, environ)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_reviewed_field_has_a_case_here() -> None:
    missing = sorted(set(reviewing.STEP_REVIEW) - set(CASES))
    assert not missing, (
        f"reviewed step field(s) {missing} have no case in CASES: show each in what `runbook plan` prints "
        "(a fact in engine/stepview.py, or a block of engine/commands/plan.py), then add the case"
    )
    assert not set(CASES) - set(reviewing.STEP_REVIEW), sorted(set(CASES) - set(reviewing.STEP_REVIEW))


@pytest.mark.parametrize("field", sorted(CASES))
def test_a_reviewed_field_a_step_sets_shows_in_the_plan(field: str, tmp_path: Path) -> None:
    changes, shown, compared = CASES[field]
    without = compared or {**STEP, **{k: v for k, v in changes.items() if k != field}}
    assert shown not in _plan(tmp_path, without)  # the text comes from the field, not from the rest
    assert shown in _plan(tmp_path, {**STEP, **changes})


def test_the_plan_and_the_checklist_say_the_same_facts(tmp_path: Path) -> None:
    """The issue's example: a step that continues on error and accepts exit code 3 planned as `[on local]`."""
    step = {**STEP, "on": "web", "continue_on_error": True, "expect": {"exit_code": [0, 3]}, "timeout": 600}
    plan = _plan(tmp_path, step)
    facts = "on web (3 hosts), 10 at a time, timeout 10 min, expects exit code 0 or 3, continues on error"
    assert f"probe: Probe  [{facts}]" in plan
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    checklist = in_process(["checklist", str(tmp_path / "facts.yml")], tmp_path, environ)
    assert checklist.returncode == 0, checklist.stderr
    assert f"`probe` · {facts.replace(', ', ' · ')}" in checklist.stdout


def test_until_is_shown_with_the_values_it_reads(tmp_path: Path) -> None:
    """Issue 23: what the run will judge, with the values it reads, in plan and checklist."""
    head = {**HEAD, "variables": {"version": {"default": "1.2"}, "tries": {"type": "integer", "default": 3}}}
    step = {**STEP, "until": "version in result.stdout or tries < 1"}
    book = tmp_path / "facts.yml"
    book.write_text(yaml.safe_dump({**head, "steps": [step]}, sort_keys=False), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    for task in ("plan", "checklist"):
        done = in_process([task, str(book), "--platform", "linux"], tmp_path, environ)
        assert done.returncode == 0, done.stderr
        assert 'until version in result.stdout or tries < 1 (tries = 3, version = "1.2")' in done.stdout
