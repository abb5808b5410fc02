"""Faults in a rehearsal (`--fail`, `--lose`, `--kill-at` and the resume after it), the scenario's own
schema errors at file:line, and a rehearsal never mistaken for a real run."""

from __future__ import annotations

import json
from pathlib import Path

from rehearsing import calls, drill_lab, journal, rehearse, runbook, section


def test_a_failure_on_one_host_is_retried_tolerated_and_reported(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--fail", "restart@node-b.invalid=3")
    assert done.returncode == 1, done.stderr  # a host failed: the run says so, as a real one would
    hit = [c for c in calls(lab) if c["fault"] == "--fail restart@node-b.invalid=3"]
    assert [(c["host"], c["exit_code"]) for c in hit] == [("node-b.invalid", 3)] * 3  # retries 2
    faults = section(done.stdout, "Faults and what they caused")
    assert "`--fail restart@node-b.invalid=3` hit restart@node-b.invalid (its outcome: failed)" in faults
    # max_failed_hosts 1 tolerated it: node-b is left out afterwards, the others go on
    assert not [c for c in calls(lab) if c["step"] == "wait-ready" and c["host"] == "node-b.invalid"]
    assert {c["host"] for c in calls(lab) if c["step"] == "wait-ready"} == {
        "node-a.invalid",
        "node-c.invalid",
    }
    assert "restart" not in section(done.stdout, "Retries never triggered")
    assert "restart" not in section(done.stdout, "Failure handlers never triggered")


def test_a_failure_where_it_is_not_tolerated_stops_the_run_and_the_report_says_what_was_never_reached(
    tmp_path: Path,
) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--fail", "rotate")
    assert done.returncode == 1
    faults = section(done.stdout, "Faults and what they caused")
    assert (
        "`--fail rotate` hit rotate[1]@local (its outcome: failed); steps never reached: rotate[2], snapshot/save"
        in faults
    )
    assert "- look: Look at the dashboard" in section(done.stdout, "Steps never reached")


def test_continue_on_error_is_exercised_by_a_failure(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--fail", "flaky=7")
    assert "flaky" not in section(done.stdout, "Failure handlers never triggered")
    assert [c["exit_code"] for c in calls(lab) if c["step"] == "flaky"] == [7]
    assert [c["step"] for c in calls(lab)][-1] == "version"  # the run went on past the failure
    assert section(done.stdout, "Steps never reached").strip() == "- none"


def test_a_lost_connection_leaves_the_step_unknown(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--lose", "bucket@node-a.invalid")
    assert done.returncode == 1
    (lost,) = [c for c in calls(lab) if c["step"] == "bucket"]
    assert lost["exit_code"] is None and lost["fault"] == "--lose bucket@node-a.invalid"
    assert "`--lose bucket@node-a.invalid` hit bucket@node-a.invalid (its outcome: unknown)" in done.stdout


def test_kill_at_stops_the_engine_then_the_rehearsal_resumes_the_run(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--kill-at", "snapshot")
    assert done.returncode == 0, done.stderr
    assert "resuming the run, as the operator would" in done.stderr
    asked = calls(lab)
    first = [c["step"] for c in asked if c["run"] == 1 and c["step"]]
    assert first == ["canary", "rotate[1]", "rotate[2]", "snapshot/save"]
    second = [c["step"] for c in asked if c["run"] == 2 and c["step"]]
    assert second[0] == "snapshot/save" and "canary" not in second  # done before: not run again
    records = journal(lab)
    kinds = [r["type"] for r in records]
    assert kinds.count("run") == 1 and "resumed" in kinds and kinds[-1] == "run-end"
    rerun = [r for r in records if r["type"] == "confirmation" and r.get("host") == "local"]
    assert rerun and rerun[0]["by"] == "--rerun-unknown" and rerun[0]["step"] == "snapshot/save"
    assert "the engine stopped there, and the run was resumed" in done.stdout
    timeline = section(done.stdout, "Timeline (simulated clock)")
    assert (
        "| 1 | snapshot/save | local | ` snapshot-save --name pre-drill ` | none: the engine was killed here |"
        in (timeline)
    )
    assert "Run it again? → 'yes', answered by simulated (--rerun-unknown)" in done.stdout


def test_a_fault_naming_no_step_is_refused_before_anything_runs(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--fail", "restrat")
    assert done.returncode == 2
    assert "--fail restrat: no command step 'restrat'; command steps: canary, rotate[1]" in done.stderr
    manual = rehearse(lab, "--auto", "--kill-at", "look")
    assert manual.returncode == 2 and "--kill-at look: no command step 'look'" in manual.stderr
    wrong = rehearse(lab, "--auto", "--lose", "restart")
    assert wrong.returncode == 2 and "STEP@HOST" in wrong.stderr
    assert not (lab / ".runbook").exists()


def test_scenario_problems_are_reported_together_at_file_line(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    (lab / "drill.rehearsal.yml").write_text(
        "rehearsal: 1\n"
        "answers:\n"
        "  - step: restart\n"
        "    exit: 300\n"
        "  - command: '(unclosed'\n"
        "    stdout: x\n"
        "  - step: wait-ready\n"
        "    duraton: 5s\n"
    )
    done = rehearse(lab, "--auto")
    assert done.returncode == 2
    assert "drill.rehearsal.yml:4:11: answers[0].exit:" in done.stderr
    assert "drill.rehearsal.yml:5:14: answers[1].command:" in done.stderr
    assert (
        "drill.rehearsal.yml:8:5: answers[2].duraton: unknown key 'duraton'; did you mean 'duration'?"
        in done.stderr
    )
    assert "3 problems found" in done.stderr
    assert not (lab / ".runbook").exists()


def test_a_rehearsal_is_listed_as_one_and_never_resumed_by_run(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    killed = rehearse(lab, "--auto", "--fail", "rotate")  # a failed run: a real one would be resumable
    assert killed.returncode == 1
    (run_dir,) = (lab / ".runbook" / "rehearsals" / "runs").iterdir()
    listed = runbook(lab, "runs")
    assert listed.returncode == 0, listed.stderr
    rehearsals = listed.stdout.split("Rehearsals (runbook rehearse: nothing was executed)")[1]
    assert run_dir.name in rehearsals and run_dir.name not in listed.stdout.split("Rehearsals")[0]
    shown = runbook(lab, "runs", run_dir.name[:12])  # found by a prefix, in the rehearsals' state
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_dir.name}: drill" in shown.stdout and "rotate" in shown.stdout
    document = json.loads(runbook(lab, "runs", "--format", "json").stdout)
    assert document["runs"] == [] and [r["run_id"] for r in document["rehearsals"]] == [run_dir.name]
    resumed = runbook(lab, "run", "drill.yml", "--var", "canary=x", "--resume", run_dir.name)
    assert resumed.returncode == 2 and run_dir.name in resumed.stderr
    assert not (lab / "CANARY").exists()


def test_a_kill_during_a_fan_out_leaves_every_host_unknown_and_each_is_asked_about(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--kill-at", "restart")
    assert done.returncode == 0, done.stderr
    killed = {c["host"] for c in calls(lab) if c["run"] == 1 and c["step"] == "restart"}
    assert killed == {"node-a.invalid", "node-b.invalid", "node-c.invalid"}
    asked = {r["host"] for r in journal(lab) if r["type"] == "confirmation" and r.get("host")}
    assert asked == killed
    again = {c["host"] for c in calls(lab) if c["run"] == 2 and c["step"] == "restart"}
    assert again == killed
    (run_dir,) = (lab / ".runbook" / "rehearsals" / "runs").iterdir()
    shown = runbook(lab, "runs", run_dir.name)
    assert shown.returncode == 0, shown.stderr  # a rehearsal's id is found by `runs` too
    assert "restart" in shown.stdout and "resumed" in shown.stdout


def test_the_scenario_answers_a_manual_step_and_a_wrong_answer_fails_it(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    scenario = lab / "drill.rehearsal.yml"
    scenario.write_text(scenario.read_text() + "manual:\n  look: v1.9\n")
    done = rehearse(lab, "--auto")
    assert done.returncode == 1, done.stderr
    assert "Version shown → 'v1.9', answered by simulated (--scenario)" in done.stdout
    (manual,) = [r for r in journal(lab) if r["type"] == "manual"]
    assert manual["by"] == "--scenario" and manual["ok"] is False
    assert "| operator | outcome |  | failed |  |" in done.stdout
    scenario.write_text(scenario.read_text().replace("  look: v1.9", "  lok: v2"))
    wrong = rehearse(lab, "--auto")
    assert wrong.returncode == 2
    assert "drill.rehearsal.yml: manual: no manual step 'lok'; manual steps: look" in wrong.stderr
