"""In-process: the authoring features at the plan level — texts rendered again at run time, `run_once`, `until`,
`rules`, `loop`, `use` — built from runbooks written on the fly and planned without running anything."""

from __future__ import annotations

import datetime
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine import rules, targets, variables
from engine.attempts import Attempts, until_holds
from engine.errors import InvalidRunbook
from engine.executors import Result
from engine.model import Retries, Step
from engine.planner import build_plan
from engine.planning import Plan
from engine.rendering import STARTED
from engine.reviewing import reviewable as to_dict
from engine.validation import validate

HEAD = 'runbook: 1\nname: authoring\nversion: "1.0"\ntitle: T\n'


def plan_of(
    tmp_path: Path, body: str, cli: dict[str, str] | None = None, hosts: dict[str, str] | None = None
) -> Plan:
    path = tmp_path / "book.yml"
    path.write_text(HEAD + body, encoding="utf-8")
    runbook = validate(path, "book.yml").runbook
    values = variables.resolve(runbook, cli or {}, environ={})
    context = {**values.values, "platform": "linux"}
    return build_plan(runbook, values, "linux", targets.resolve(runbook, context, hosts))


def replan(plan: Plan, step_id: str, steps: dict[str, Any]) -> Any:
    planned = plan.step(step_id)
    assert planned is not None
    return plan.renderer.step(planned, steps, {})


TEXTS = """\
variables:
  who: {default: ops}
steps:
  - id: find
    title: Find
    run: echo c1
  - id: stop
    title: Stop
    confirm: "Stop {{ steps.find.stdout }} for {{ who }}?"
    run: 'true'
  - id: look
    title: Look
    manual: "Is {{ steps.find.stdout }} gone?"
    record: {prompt: "State of {{ steps.find.stdout }}", expect: gone}
    result: "{{ who }} looked"
"""


def test_operator_texts_are_placeholders_in_the_plan_and_rendered_with_the_run(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TEXTS)
    stop, look = plan.step("stop"), plan.step("look")
    assert stop is not None and look is not None
    assert stop.deferred and look.deferred
    assert stop.confirm_question == "Stop <steps.find.stdout: known at run time> for ops?"
    assert look.result == "ops looked"
    known = {"find": {"stdout": "c1"}}
    assert replan(plan, "stop", known).confirm_question == "Stop c1 for ops?"
    again = replan(plan, "look", known)
    assert (again.manual, again.record_prompt) == ("Is c1 gone?", "State of c1")
    saved = to_dict(plan)["steps"]
    assert saved[1]["confirm"] == stop.confirm_question and saved[2]["record_prompt"] == look.record_prompt


def test_a_confirm_true_asks_the_engines_question(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "steps:\n  - id: a\n    title: Do A\n    confirm: true\n    run: 'true'\n")
    step = plan.step("a")
    assert step is not None and step.confirm_question == "Run step 'a' (Do A)?" and not step.deferred


def test_run_once_shows_one_host_the_first_whose_when_holds(tmp_path: Path) -> None:
    body = """\
targets:
  nodes: {ssh: {hosts: [a.example, b.example, c.example]}}
steps:
  - id: once
    title: Once
    on: nodes
    run_once: true
    when: host.name != 'a.example'
    run: echo {{ host.name }}
"""
    plan = plan_of(tmp_path, body)
    step = plan.step("once")
    assert step is not None and len(step.hosts) == 3
    assert [h.host.name for h in step.shown_hosts] == ["b.example"]
    assert to_dict(plan)["steps"][0]["run_once"] is True


def problems_of(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "book.yml"
    path.write_text(HEAD + body, encoding="utf-8")
    try:
        validate(path, "book.yml")
    except InvalidRunbook as error:
        return [str(p) for p in error.problems]
    return []


def test_until_may_read_result_and_nothing_undefined(tmp_path: Path) -> None:
    step = "steps:\n  - id: a\n    title: A\n    run: 'true'\n    until: {}\n    result: '{{{{ result }}}}'\n"
    assert problems_of(tmp_path, step.format("result.exit_code == 0 and resutl")) == [
        "book.yml:9:12: steps[0].until: undefined name 'resutl'; did you mean 'result'?",
        "book.yml:10:13: steps[0].result: undefined name 'result'",
    ]
    assert problems_of(tmp_path, step.format("'{{ result }}'"))[0].endswith(
        "steps[0].until: 'until' is a bare expression: remove the {{ }}"
    )


def test_attempts_end_at_the_count_or_before_the_deadline() -> None:
    step = Step(0, "a", "A", retries=Retries(3, 10.0), deadline=15.0, timeout=60.0)
    attempts = Attempts(step, started=time.monotonic())
    assert attempts.another(1) == (True, "")
    assert 0 < (attempts.timeout() or 0) <= 15.0  # the step's 60 s cut to what is left of the deadline
    late = Attempts(step, started=time.monotonic() - 6.0)
    assert late.another(1) == (False, "deadline 15s reached")  # the count is shown with the time (issue 23)
    assert Attempts(replace(step, deadline=None)).another(4) == (False, "")


def test_until_holds_judges_the_attempt_and_not_json_is_not_yet(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        "steps:\n  - id: a\n    title: A\n    run: 'true'\n    until: (result.stdout | from_json).up\n",
    )
    step = plan.steps[0].step
    result = Result("x", "local", 0, '{"up": true}', "", 0.1)
    assert until_holds(step, {}, result) == (True, "")
    assert until_holds(step, {}, replace(result, stdout='{"up": false}')) == (
        False,
        "until (result.stdout | from_json).up is false",
    )
    held, why = until_holds(step, {}, replace(result, stdout="<html>"))
    assert not held and why.startswith("until: invalid expression: from_json: not JSON")


RULES = """\
variables:
  a: {type: integer, required: true}
  b: {type: integer, default: 1}
rules:
  - {assert: a < b, message: "a ({{ a }}) must be less than b ({{ b }})"}
  - {assert: b > 0, message: b must be positive}
steps: [{id: x, title: X, run: 'true'}]
"""


def test_every_broken_rule_is_told_and_a_rule_over_a_blank_waits(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text(HEAD + RULES, encoding="utf-8")
    runbook = validate(path, "book.yml").runbook
    values = variables.resolve(runbook, {"a": "5", "b": "-1"}, environ={})
    with pytest.raises(InvalidRunbook) as error:
        rules.check(runbook, values, dict(values.values))
    assert [p.message for p in error.value.problems] == [
        "a (5) must be less than b (-1)",
        "b must be positive",
    ]
    blank = variables.resolve(runbook, {}, environ={}, allow_missing=True)
    rules.check(
        runbook, blank, dict(blank.values)
    )  # `a` not given: only the second rule is judged, and holds


LOOPED = """\
variables:
  nodes: {type: array, default: [a, b]}
  count: {type: integer, default: 2}
steps:
  - id: each
    title: Each
    loop: "LOOP"
    run: echo {{ item }}
"""


def test_a_loop_expression_over_the_values_gives_one_unit_per_item(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, LOOPED.replace("LOOP", "nodes + ['c']"))
    assert [(s.id, s.hosts[0].variants[0].script) for s in plan.steps] == [
        ("each[1]", "echo a"),
        ("each[2]", "echo b"),
        ("each[3]", "echo c"),
    ]
    assert [s["item"] for s in to_dict(plan)["steps"]] == ["a", "b", "c"]
    assert [s.id for s in plan_of(tmp_path, LOOPED.replace("LOOP", "range(count)")).steps] == [
        "each[1]",
        "each[2]",
    ]


def test_a_loop_that_is_not_a_list_or_reads_steps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRunbook) as error:
        plan_of(tmp_path, LOOPED.replace("LOOP", "count"))
    assert "steps[0].loop: loop must give a list, got int: 2" in str(error.value.problems[0])
    assert "book.yml:11:11: steps[0].loop: undefined name 'steps'" in problems_of(
        tmp_path, LOOPED.replace("LOOP", "steps.x.stdout")
    )
    clash = LOOPED.replace("LOOP", "nodes").replace("    run:", "    loop_var: count\n    run:")
    assert any("loop_var 'count' would hide a name" in p for p in problems_of(tmp_path, clash))
    outside = "steps:\n  - id: a\n    title: A\n    run: echo {{ item }}\n"
    assert problems_of(tmp_path, outside) == ["book.yml:8:10: steps[0].run: undefined name 'item'"]


def test_now_is_one_utc_instant_formatted_as_asked(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path, "steps:\n  - id: a\n    title: A\n    run: echo {{ now('%Y%m%d') }} {{ now() }}\n"
    )
    script = plan.steps[0].hosts[0].variants[0].script
    assert script == f"echo {STARTED:%Y%m%d} {STARTED:%Y-%m-%dT%H:%M:%SZ}"
    assert STARTED.utcoffset() == datetime.timedelta(0)


def test_attempt_and_host_keys_on_a_manual_step_are_refused_not_ignored(tmp_path: Path) -> None:
    body = "steps:\n  - id: a\n    title: A\n    manual: Look.\n    until: result\n    deadline: 1m\n"
    why = (
        "until, deadline and run_once are about a command's attempts and hosts: they belong to command steps"
    )
    assert problems_of(tmp_path, body) == [
        f"book.yml:9:5: steps[0].until: 'until' is not allowed with 'manual': {why} (run), not to manual ones",
        f"book.yml:10:5: steps[0].deadline: 'deadline' is not allowed with 'manual': {why} (run), not to manual ones",
    ]


def test_a_rule_over_a_secret_never_shows_the_value_in_its_error(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text(
        HEAD
        + "variables:\n  pw: {type: string, secret: true, required: true}\n"
        + "rules:\n  - {assert: (pw | from_json) == 1, message: pw must be JSON}\n"
        + "steps: [{id: x, title: X, run: 'true'}]\n",
        encoding="utf-8",
    )
    runbook = validate(path, "book.yml").runbook
    values = variables.resolve(runbook, {}, environ={"RUNBOOK_VAR_PW": "hunter2hunter2"})
    with pytest.raises(InvalidRunbook) as error:
        rules.check(runbook, values, dict(values.values))
    [problem] = error.value.problems
    assert "not JSON" in problem.message and "hunter2hunter2" not in problem.message


def test_braces_in_expect_are_refused_with_the_way_to_compare_a_value(tmp_path: Path) -> None:
    """Issue 23: `expect` is matched as written; `{{ version }}` there would never match the value."""
    body = (
        "variables:\n  version: {default: '1.2'}\nsteps:\n  - id: a\n    title: A\n    run: echo 1.2\n"
        "    expect:\n      stdout_contains: '{{ version }}'\n      stdout_matches: '^[0-9]{2}$'\n"
    )
    assert problems_of(tmp_path, body) == [
        "book.yml:12:24: steps[0].expect.stdout_contains: expect.stdout_contains is matched as written, not "
        "rendered: it would look for the braces themselves; to compare the output with a value, write an until "
        'over the attempt (until: "version in result.stdout"); to match braces, escape them in stdout_matches '
        "(\\{\\{)"
    ]
