"""`runbook runs`: past runs read back from their journals, listed, and one shown step by step, host by host."""

from __future__ import annotations

import getpass
import json
import signal
import socket
from pathlib import Path

import pytest

from runbooks import Lab, Nodes, block, blocking_lab, nodes_runbook, run_dirs, unblock, wait_for

pytestmark = pytest.mark.ssh

STEPS = """\
  - id: stop
    title: Stop the service
    on: nodes
    run: docker stop app
  - id: migrate
    title: Migrate
    on: nodes
    run: slow migrate
  - id: check
    title: Check the version
    manual: Read the version on the status page.
    record:
      prompt: Version shown
      expect: "{{ release }}"
"""
VARIABLES = """\
  release: {type: string, default: v2.1.0}
  token: {type: string, secret: true, default: hunter2-hunter2}
"""


def rows(output: str) -> list[list[str]]:
    """The body rows of the tables in `output`, as lists of stripped cells."""
    lines = [line for line in output.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]


@pytest.fixture
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Lab:
    lab = blocking_lab(tmp_path / "lab", home, sshd_nodes(2))
    text = nodes_runbook("history", STEPS, lab.nodes, VARIABLES)
    lab.write(text.replace('version: "1.0"', 'version: "3.2"\nwarnings: [Stops the service.]'))
    return lab


def test_runs_lists_past_runs_and_shows_one_step_by_step(lab: Lab) -> None:
    first, second = lab.nodes
    done = lab.run_here(lab.book, "--yes", stdin="v2.1.0\n")
    assert done.returncode == 0, done.stdout + done.stderr
    [finished] = run_dirs(lab.state)

    started = block(first, "slow")
    running = lab.start(lab.book, "--yes")
    wait_for(started.exists, "the second run to block in `migrate`")
    try:
        [live] = [d for d in run_dirs(lab.state) if d != finished]
        listed = lab.run_here(task="runs")
        assert listed.returncode == 0, listed.stderr
        assert [live.name, "history", "3.2", getpass.getuser()] == rows(listed.stdout)[0][:4]
        assert rows(listed.stdout)[0][5] == f"running (pid {running.process.pid})"
    finally:
        running.stop(signal.SIGKILL)
        unblock(first, "slow")

    listed = lab.run_here(task="runs")
    table = rows(listed.stdout)
    assert [row[0] for row in table] == [live.name, finished.name]  # newest first
    assert [(row[1], row[2], row[3], row[5]) for row in table] == [
        ("history", "3.2", getpass.getuser(), "unfinished"),
        ("history", "3.2", getpass.getuser(), "ok"),
    ]
    assert all(row[4].startswith("20") and row[4].endswith("Z") for row in table)

    shown = lab.run_here("--run-id", finished.name[:-2], task="runs")  # a unique beginning is enough
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"run {finished.name}: history 3.2" in out
    assert f"by {getpass.getuser()}@{socket.gethostname()}" in out
    assert "variables: release=v2.1.0, token=********" in out and "hunter2" not in out
    assert "status: ok (exit 0)" in out
    steps = [row[:5] for row in rows(out) if len(row) == 8]
    assert [row[0] for row in steps] == [
        "stop",
        "stop",
        "migrate",
        "migrate",
        "check",
    ]  # in the order they ran
    assert sorted(steps) == sorted(
        [
            ["stop", first.address, "ok", "0", "1"],
            ["stop", second.address, "ok", "0", "1"],
            ["migrate", first.address, "ok", "0", "1"],
            ["migrate", second.address, "ok", "0", "1"],
            ["check", "operator", "ok", "", "1"],
        ]
    )
    events = [row for row in rows(out) if len(row) == 5]
    assert [row[1] for row in events] == ["confirmation", "manual", "end: ok"]
    assert events[0][4].startswith(f"'yes' by {getpass.getuser()} (--yes): Have you read the warnings")
    assert events[1][2:] == [
        "check",
        "operator",
        f"'v2.1.0' by {getpass.getuser()} (operator), expected 'v2.1.0': ok",
    ]

    killed = lab.run_here("--run-id", live.name, task="runs")
    assert (
        "status: unfinished: it ended without a word (killed, crashed); --resume continues it"
        in killed.stdout
    )
    killed_steps = {(row[0], row[1]): row[2] for row in rows(killed.stdout) if len(row) == 8}
    assert killed_steps[("migrate", first.address)] == "unknown"
    assert killed_steps[("stop", first.address)] == killed_steps[("stop", second.address)] == "ok"

    # the same, as JSON documents a script can read
    listed = json.loads(lab.run_here("--format", "json", task="runs").stdout)
    assert (listed["format"], listed["format_version"]) == ("runbook-runs", 1)
    assert [(r["run_id"], r["runbook"], r["version"], r["status"]) for r in listed["runs"]] == [
        (live.name, "history", "3.2", "unfinished"),
        (finished.name, "history", "3.2", "ok"),
    ]
    one = json.loads(lab.run_here("--run-id", finished.name, "--format", "json", task="runs").stdout)
    assert (one["format"], one["format_version"]) == ("runbook-run", 1)
    assert (one["run"]["status"], one["run"]["exit_code"], one["run"]["user"]) == ("ok", 0, getpass.getuser())
    assert one["run"]["variables"] == {"release": "v2.1.0", "token": "********"}
    assert sorted((s["step"], s["host"], s["status"]) for s in one["steps"]) == sorted(
        (row[0], row[1], row[2]) for row in steps
    )
    assert all(s["started"] <= s["ended"] for s in one["steps"] if s["host"] != "operator")
    assert [e["type"] for e in one["events"]] == ["confirmation", "manual", "run-end"]
    dead = json.loads(lab.run_here("--run-id", live.name, "--format", "json", task="runs").stdout)
    assert dead["run"]["state"].startswith("unfinished") and dead["run"]["ended"] is None
    assert {(s["step"], s["host"]): s["status"] for s in dead["steps"]}[
        ("migrate", first.address)
    ] == "unknown"


def test_runs_of_an_empty_state_dir_and_an_unknown_run(lab: Lab) -> None:
    empty = lab.run_here(task="runs")
    assert empty.returncode == 0 and rows(empty.stdout) == []
    unknown = lab.run_here("--run-id", "20990101T000000Z-000000", task="runs")
    assert unknown.returncode == 2 and "no run '20990101T000000Z-000000'" in unknown.stderr


def test_a_damaged_journal_does_not_hide_the_other_runs(lab: Lab) -> None:
    done = lab.run_here(lab.book, "--yes", stdin="v2.1.0\n")
    assert done.returncode == 0, done.stderr
    broken = lab.state / "runs" / "20000101T000000Z-bad000"
    broken.mkdir()
    (broken / "journal.jsonl").write_text('{"type": "run"}\nnot json\n{"type": "run-end"}\n')
    table = rows(lab.run_here(task="runs").stdout)
    assert table[0][0] == run_dirs(lab.state)[-1].name and table[0][5] == "ok"
    assert table[1][0] == broken.name and table[1][5].startswith("unreadable:")  # and why, folded below
