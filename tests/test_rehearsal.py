"""`runbook rehearse`: the real engine against simulated hosts. Nothing runs, nothing connects; the commands
are `plan`'s byte for byte; a scenario answers, on a simulated clock; the report shows it all, and what the
rehearsal never exercised."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from rehearsing import calls, drill_lab, journal, rehearse, runbook, section

from engine.locking import RunLock


def test_the_canary_is_never_touched_and_nothing_is_written_outside_the_rehearsal(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    assert not (lab / "CANARY").exists()
    assert f"touch {lab / 'CANARY'}" in done.stdout  # the report shows the command it did not run
    assert sorted(p.name for p in lab.iterdir()) == [
        ".runbook",
        "drill.rehearsal.yml",
        "drill.yml",
        "inner.yml",
    ]
    assert [p.name for p in (lab / ".runbook").iterdir()] == ["rehearsals"]
    assert "run finished: every step succeeded" in done.stderr
    assert "(a rehearsal: nothing was executed; kept in " in done.stderr


def test_the_rendered_commands_are_byte_identical_to_plans(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    planned = runbook(lab, "plan", "drill.yml", "--var", f"canary={lab / 'CANARY'}", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    expected = {}
    for step in plan["steps"]:
        for host in step["hosts"]:
            commands = host["commands"]
            expected[step["id"], host["host"]] = commands.get("linux") or commands.get("*")
    asked = {(c["step"], c["host"]): c["command"] for c in calls(lab) if c["step"] is not None}
    assert asked, "the rehearsal asked nothing"
    for key, command in asked.items():
        assert command == expected[key], key
    checks = {h["commands"]["*"] for c in plan["checks"] for h in c["hosts"]}
    assert {c["command"] for c in calls(lab) if c["step"] is None} == checks
    assert f"| plan sha256 | {plan['sha256']} |" in done.stdout


def test_an_ssh_target_of_unreachable_addresses_rehearses_without_a_connection_attempt(
    tmp_path: Path,
) -> None:
    lab = drill_lab(tmp_path)
    listening = socket.socket()
    listening.bind(("127.0.0.77", 0))
    listening.listen(8)  # would queue any connection; nobody accepts
    closed = socket.socket()
    closed.bind(("127.0.0.78", 0))  # bound, never listening: a closed port
    hosts = f"nodes=u@127.0.0.77:{listening.getsockname()[1]},u@127.0.0.78:{closed.getsockname()[1]}"
    try:
        done = rehearse(lab, "--auto", "--hosts", hosts)
        assert done.returncode == 0, done.stderr
        listening.setblocking(False)
        try:
            peer = listening.accept()
        except BlockingIOError:
            peer = None
        assert peer is None, "the rehearsal connected to a host"
        assert {c["host"] for c in calls(lab) if c["step"] == "restart"} == {"127.0.0.77", "127.0.0.78"}
        # the same hosts in a real run: connecting is attempted, and fails before anything runs
        real = runbook(
            lab,
            "run",
            "drill.yml",
            "--var",
            "canary=x",
            "--yes",
            "--hosts",
            hosts.split(",")[0]
            .replace("127.0.0.77", "127.0.0.78")
            .replace(str(listening.getsockname()[1]), str(closed.getsockname()[1])),
        )
        assert real.returncode == 3 and "cannot reach every host" in real.stderr, real.stderr
    finally:
        listening.close()
        closed.close()


def test_until_waits_on_the_simulated_clock_and_the_report_keeps_its_time(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    waits = [c for c in calls(lab) if c["step"] == "wait-ready" and c["host"] == "node-b.invalid"]
    # NotReady twice (20 s each), then Ready: each attempt 20 s + the 30 s delay after the one before
    assert [c["stdout"] for c in waits] == ["NotReady", "NotReady", "Ready"]
    assert [c["start"] - waits[0]["start"] for c in waits] == [0.0, 50.0, 100.0]
    steps = section(done.stdout, "8. wait-ready: Wait until each node is Ready")
    assert "| node-b.invalid | outcome |  | ok after 3 attempts |  |" in steps  # issue 23: said in words
    assert "answers[0] (line 6), call 3" in steps
    assert "| simulated duration | 0:04:15 |" in done.stdout


def test_a_deadline_of_ten_minutes_ends_the_wait_after_ten_simulated_minutes(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    (lab / "never.rehearsal.yml").write_text(
        "rehearsal: 1\nanswers:\n  - step: wait-ready\n    host: node-c.invalid\n"
        "    stdout: NotReady\n    duration: 80s\n"
    )
    done = rehearse(lab, "--auto", "--scenario", "never.rehearsal.yml")
    assert done.returncode == 1, done.stderr
    waits = [c for c in calls(lab) if c["step"] == "wait-ready" and c["host"] == "node-c.invalid"]
    # 80 s attempts, 30 s apart, the deadline at 10 min: the 6th starts at 550 s and is cut at 600 s
    assert [c["start"] - waits[0]["start"] for c in waits] == [0.0, 110.0, 220.0, 330.0, 440.0, 550.0]
    assert waits[-1]["timed_out"] and waits[-1]["end"] - waits[0]["start"] == 600.0
    (end,) = [
        r
        for r in journal(lab)
        if r["type"] == "step-end" and r["host"] == "node-c.invalid" and r["step"] == "wait-ready"
    ][-1:]
    assert end["status"] == "timed_out" and end["attempt"] == 6, end
    assert "- version: Read the version" in section(done.stdout, "Steps never reached")


def test_coverage_names_the_paths_never_taken(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert "- all-only: `when: mode == 'all'` was never true" in section(
        report, "`when` branches never taken"
    )
    assert section(report, "`until` conditions that never had to wait").strip() == "- none"  # node-b waited
    assert "- restart: retries 2, never needed" in section(report, "Retries never triggered")
    handlers = section(report, "Failure handlers never triggered")
    assert "- flaky: continue_on_error, never used" in handlers
    assert "- restart: max_failed_hosts 1, never tolerated a failure" in handlers
    unscripted = section(report, "Unscripted commands (succeeded with empty output)")
    assert "- rotate[1] @ local: rotate-cert etcd" in unscripted
    assert "snapshot-save" not in unscripted  # answered by the scenario
    # the other branch: mode=all takes `when`, and the coverage says it was never false instead
    again = rehearse(lab, "--auto", "--var", "mode=all")
    assert "- all-only: `when: mode == 'all'` was never false" in again.stdout


def test_manual_answers_under_auto_are_marked_simulated(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert "Version shown → 'v2', answered by simulated (--confirm-manual)" in done.stdout
    manual = [r for r in journal(lab) if r["type"] == "manual"]
    assert manual[0]["by"] == "--confirm-manual" and manual[0]["answer"] == "v2"


def test_the_values_rules_still_refuse(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--var", "mode=sideways")
    assert done.returncode == 2
    assert "mode is rolling or all, not sideways" in done.stderr
    assert not (lab / ".runbook").exists()


def test_each_host_gets_its_platforms_command_and_lacks_what_the_scenario_says(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    scenario = (lab / "drill.rehearsal.yml").read_text()
    (lab / "drill.rehearsal.yml").write_text(
        scenario.replace("node-c.invalid: {platform: linux}", "node-c.invalid: {platform: darwin}")
    )
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    restart = {c["host"]: c["command"] for c in calls(lab) if c["step"] == "restart"}
    assert restart == {
        "node-a.invalid": "docker restart kubelet",
        "node-b.invalid": "docker restart kubelet",
        "node-c.invalid": "echo no docker here",
    }
    missing = "hosts:\n  node-a.invalid: {missing: [kubectl]}\n"
    (lab / "drill.rehearsal.yml").write_text(scenario.replace("hosts:\n", missing))
    lacking = rehearse(lab, "--auto")
    assert lacking.returncode == 3, lacking.stderr  # preflight: nothing ran, as in a real run
    assert "node-a.invalid: program not found: kubectl" in lacking.stderr
    assert "- canary: Touch the canary" in section(lacking.stdout, "Steps never reached")


def test_a_rehearsal_never_takes_or_waits_for_a_real_runs_lock(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    with RunLock(lab / ".runbook", "drill", "a-real-run"):
        done = rehearse(lab, "--auto")
        assert done.returncode == 0, done.stderr
        real = runbook(lab, "run", "drill.yml", "--var", "canary=x", "--yes")
        assert real.returncode == 2 and "is being run by" in real.stderr  # the real lock is held
    assert not (lab / "CANARY").exists()


def test_loops_use_run_once_and_expect_behave_as_in_a_run(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto")
    assert done.returncode == 0, done.stderr
    steps = [(c["step"], c["host"]) for c in calls(lab) if c["step"] in ("rotate[1]", "rotate[2]", "bucket")]
    assert steps == [("rotate[1]", "local"), ("rotate[2]", "local"), ("bucket", "node-a.invalid")]
    assert [c["command"] for c in calls(lab) if c["step"] == "snapshot/save"] == [
        "snapshot-save --name pre-drill"
    ]
    lab = drill_lab(tmp_path / "old")
    scenario = lab / "drill.rehearsal.yml"
    scenario.write_text(scenario.read_text().replace("app v2.0.8", "app v1.9.0"))
    old = rehearse(lab, "--auto")
    assert old.returncode == 1  # `expect: stdout_contains v2` judged the simulated output
    version = [r for r in journal(lab) if r["type"] == "step-end" and r["step"] == "version"]
    assert version and version[-1]["status"] == "failed" and "v2" in version[-1]["reason"], version
