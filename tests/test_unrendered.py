"""What reads an earlier step's output, before and during the run (issue 23, bug 5 and plan placeholders).

Before the run, an expression over a step's output is shown as that expression (never evaluated over the
placeholder's text); with the run's values, a template that fails is that step failing (journaled,
resumable), never an invalid runbook; `--from`/`--only` that leave out a step whose output a chosen step
reads are refused before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks import Lab, journal, write_runbook


def book(lab: Lab, steps: str) -> Path:
    text = f'runbook: 1\nname: outputs\nversion: "1"\ntitle: Outputs\nsteps:\n{steps}'
    return write_runbook(lab.root.parent, text)


SPLIT = """\
  - id: a
    title: A
    run: echo token
  - id: b
    title: B
    run: echo {{ steps.a.stdout.split('|')[1] }} {{ steps.a.stdout | from_json }}
    result: "got {{ (steps.b.stdout | from_json).x }}"
  - id: c
    title: C
    run: touch c-ran
"""


def test_the_plan_shows_an_expression_over_an_output_as_written(lab: Lab) -> None:
    done = lab.run_here(book(lab, SPLIT), task="plan")
    assert done.returncode == 0, done.stderr
    assert (
        "$ echo <steps.a.stdout.split('|')[1]: known at run time> <steps.a.stdout | from_json: known at run time>"
        in done.stdout
    )
    assert "result: got <(steps.b.stdout | from_json).x: known at run time>" in done.stdout


def test_a_checklist_leaves_a_blank_naming_the_step(lab: Lab, tmp_path: Path) -> None:
    done = lab.run_here(book(lab, SPLIT), "--format", "md", task="checklist")
    assert done.returncode == 0, done.stderr
    assert "echo ________ (from step 1) ________ (from step 1)" in done.stdout


def test_a_template_failing_with_the_run_values_is_that_step_failing(lab: Lab) -> None:
    path = book(lab, SPLIT)
    done = lab.run_here(path)
    assert done.returncode == 1, done.stdout + done.stderr  # a step failure, not 2 (invalid runbook)
    reason = "book.yml:11:10: steps[1].run: undefined: list object has no element 1"
    shown = " ".join(done.stdout.split())  # the terminal may wrap a long line
    assert "(cannot render: " in shown and reason in shown
    assert "run failed: b@local" in done.stdout and not (lab.root / "c-ran").exists()
    ends = [(r["step"], r["status"], r["reason"]) for r in journal(lab.state) if r["type"] == "step-end"]
    assert [(step, status) for step, status, _ in ends] == [("a", "ok"), ("b", "failed")]
    assert ends[1][2].startswith("cannot render: ") and ends[1][2].endswith(reason)
    again = lab.run_here(path, "--resume")
    assert again.returncode == 1, again.stdout + again.stderr
    starts = [r["step"] for r in journal(lab.state) if r["type"] == "step-start"]
    assert starts == ["a", "b", "b"]  # the resume tried b again, and did not run a again


def test_a_result_that_cannot_be_rendered_is_said_and_the_step_stays_done(lab: Lab) -> None:
    steps = (
        '  - id: a\n    title: A\n    run: echo plain\n    result: "{{ (steps.a.stdout | from_json).x }}"\n'
    )
    done = lab.run_here(book(lab, steps))
    assert done.returncode == 0, done.stdout + done.stderr
    shown = " ".join(done.stdout.split())  # the terminal may wrap a long line
    assert "result: cannot render: " in shown
    assert "book.yml:9:13: steps[0].result: template error: from_json: not JSON" in shown


READS = """\
  - id: a
    title: A
    run: echo token > a-ran
  - id: b
    title: B
    run: echo b > b-ran
  - id: c
    title: C
    when: steps.a.exit_code == 0
    run: echo c
"""


@pytest.mark.parametrize(("flags", "said"), [(["--from", "b"], "--from b"), (["--only", "c"], "--only c")])
def test_leaving_out_a_step_whose_output_is_read_is_refused_before_anything_runs(
    lab: Lab, flags: list[str], said: str
) -> None:
    done = lab.run_here(book(lab, READS), *flags)
    assert done.returncode == 2
    assert (
        f"{said}: step 'c' reads the output of step 'a', which would not run; start at 'a' or earlier (--from a)"
        in done.stderr
    )
    assert not (lab.root / "b-ran").exists() and not lab.state.exists()


def test_a_selection_keeping_what_is_read_runs(lab: Lab) -> None:
    done = lab.run_here(book(lab, READS), "--only", "b")
    assert done.returncode == 0, done.stderr
    assert (lab.root / "b-ran").exists() and not (lab.root / "a-ran").exists()
