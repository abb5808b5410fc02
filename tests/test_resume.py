"""A run that survives crashes, end to end: its steps on real sshd nodes; the run that is killed is a process
of its own, the resumes run the same command line in this process (`Lab.run_here`).

Kill it (SIGKILL, SIGINT, SIGTERM) while a node step runs, then `run --resume`: what finished does not run
again (the recording stand-ins prove it), the step that was cut short is unknown and runs again only once
someone says so, and the journal ends with every step and host finished exactly once. Also: a torn last
journal line, a runbook changed since (refused, `--force`), values from the journal, a journal that
disappears mid-run.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from runbooks import (
    Lab,
    Nodes,
    block,
    blocking_lab,
    calls,
    drop_exit_status,
    ends,
    fold,
    group_of,
    journal,
    journal_path,
    kinds,
    nodes_runbook,
    processes_matching,
    run_dirs,
    unblock,
    wait_for,
)

pytestmark = pytest.mark.ssh

STEPS = """\
  - id: prepare
    title: Pull the image
    on: nodes
    run: docker pull app:{{ release }}
  - id: restart
    title: Restart the service
    on: nodes
    run: slow restart app
  - id: finish
    title: Check the containers
    on: nodes
    run: docker ps
"""
VARIABLES = "  release: {type: string, required: true}\n"


@pytest.fixture
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Lab:
    """Two nodes with a recording `docker` and a blocking `slow`; a runbook of three steps on both."""
    lab = blocking_lab(tmp_path / "lab", home, sshd_nodes(2))
    lab.write(nodes_runbook("resume-me", STEPS, lab.nodes, VARIABLES))
    return lab


def cut_short(lab: Lab, signum: int = signal.SIGKILL) -> tuple[int, str, str]:
    """Start a run, let `restart` finish on the second node and hang on the first, then send `signum`.

    SIGINT and SIGTERM must stop the command on the node too; SIGKILL cannot (the test lets it go).
    """
    first, second = lab.nodes
    started = block(first, "slow")
    running = lab.start(lab.book, "--yes", "--var", "release=1.4.2")
    wait_for(started.exists, "`slow` to start on the first node")
    wait_for(
        lambda: ("restart", second.address) in ends(journal(lab.state)), "`restart` to end on the second node"
    )
    result = running.stop(signum)
    on_node = f"{first.bin_dir}/slow restart app"
    if signum == signal.SIGKILL:
        assert processes_matching(on_node), "the node's command should outlive a SIGKILLed engine"
        drop_exit_status(group_of(on_node))  # else a resume learns its end there (test_remote_survival.py)
    else:
        wait_for(lambda: not processes_matching(on_node), "the node's command to be stopped", timeout=5)
    unblock(first, "slow")
    return result


def assert_nothing_done_twice(lab: Lab) -> None:
    """The stand-ins: each step ran once per node, except `restart` on the first node, cut short then rerun."""
    first, second = lab.nodes
    for node in lab.nodes:
        assert calls(node, "docker") == [["docker", "pull", "app:1.4.2"], ["docker", "ps"]]
    assert calls(first, "slow") == [["slow", "restart", "app"]] * 2
    assert calls(second, "slow") == [["slow", "restart", "app"]]


def assert_finished_once(lab: Lab) -> None:
    records = journal(lab.state)
    keys = {(step, node.address) for step in ("prepare", "restart", "finish") for node in lab.nodes}
    assert fold(records) == dict.fromkeys(keys, "ok")
    assert ends(records) == dict.fromkeys(keys, 1)
    assert kinds(records)[-1] == "run-end" and records[-1]["status"] == "ok"


def test_sigkill_then_resume_asks_before_the_unknown_step(lab: Lab) -> None:
    first, _ = lab.nodes
    code, _, _ = cut_short(lab)
    assert code == -signal.SIGKILL
    assert fold(journal(lab.state))[("restart", first.address)] == "unknown"

    for answer in ("", "n\n"):  # end of input, then a "no": it does not run, and --yes does not answer for it
        declined = lab.run_here(lab.book, "--resume", "--yes", stdin=answer)
        assert declined.returncode == 1, declined.stderr
        assert (
            f"step 'restart' on {first.address}" in declined.stdout
            and "outcome is unknown" in declined.stdout
        )
        assert "outcome unknown and not confirmed" in declined.stderr
        assert len(calls(first, "slow")) == 1 and len(calls(first, "docker")) == 1

    resumed = lab.run_here(lab.book, "--resume", "--yes", stdin="y\n")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (
        f"outcome unknown (started, never finished well), asked before running again: restart@{first.address}"
        in resumed.stdout
    )
    assert_nothing_done_twice(lab)
    assert_finished_once(lab)
    records = journal(lab.state)
    answers = [(r["answer"], r["by"]) for r in records if r["type"] == "confirmation" and r.get("host")]
    assert answers == [("no", "operator"), ("no", "operator"), ("yes", "operator")]
    assert len(run_dirs(lab.state)) == 1


@pytest.mark.parametrize(
    ("signum", "code", "answer"),
    [(signal.SIGINT, 130, ["--yes"]), (signal.SIGTERM, 143, ["--yes", "--rerun-unknown"])],
)
def test_interrupted_mid_step_is_journaled_and_resumes_the_same_way(
    lab: Lab, signum: int, code: int, answer: list[str]
) -> None:
    first, _ = lab.nodes
    exit_code, out, _ = cut_short(lab, signum)
    assert exit_code == code, out
    assert f"resume with: --resume {run_dirs(lab.state)[0].name}" in out
    records = journal(lab.state)
    assert kinds(records)[-2:] == ["interrupted", "run-end"]
    assert records[-2]["signal"] == signal.Signals(signum).name
    assert (records[-1]["status"], records[-1]["exit_code"]) == ("interrupted", code)
    assert fold(records)[("restart", first.address)] == "interrupted"  # killed on the node, and recorded

    refused = lab.run_here(lab.book, "--resume", "--yes")
    assert refused.returncode == 1 and "outcome is unknown" in refused.stdout
    resumed = lab.run_here(lab.book, "--resume", *answer, stdin="y\n" if answer == ["--yes"] else "")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    if "--rerun-unknown" in answer:
        assert "Run it again? yes (--rerun-unknown)" in resumed.stdout
    assert_nothing_done_twice(lab)
    assert_finished_once(lab)


def test_torn_last_line_is_cut_and_the_run_resumes(lab: Lab) -> None:
    first, second = lab.nodes
    cut_short(lab)
    path = journal_path(lab.state)
    data = path.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    assert json.loads(last)["type"] == "step-end" and json.loads(last)["host"] == second.address
    path.write_bytes(data[: len(data) - len(last) // 2])  # a power cut in the middle of the last write
    committed = journal(lab.state)

    # The torn end never was: `restart` on the second node started and never ended, as on the first.
    resumed = lab.run_here(lab.book, "--resume", "--yes", "--rerun-unknown")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"asked before running again: restart@{first.address}, restart@{second.address}" in resumed.stdout
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the torn half is gone, and every line left is a whole record
    assert all(isinstance(json.loads(line), dict) for line in lines[:-1])
    records = journal(lab.state)
    assert records[: len(committed)] == committed and records[len(committed)]["type"] == "resumed"
    for node in lab.nodes:
        assert calls(node, "docker") == [["docker", "pull", "app:1.4.2"], ["docker", "ps"]]
    # The first node's copy was asked about and ran again; the second node kept the exit status of its
    # (the torn record's) end: that is journaled instead, and it does not run again.
    assert calls(first, "slow") == [["slow", "restart", "app"]] * 2
    assert calls(second, "slow") == [["slow", "restart", "app"]]
    assert f"step 'restart' on {second.address}: it ended there with exit 0" in resumed.stdout
    assert_finished_once(lab)


def test_changed_runbook_is_refused_with_the_diff_unless_forced(lab: Lab) -> None:
    cut_short(lab)
    before = journal_path(lab.state).read_bytes()
    book = lab.book
    book.write_text(book.read_text().replace("run: docker ps", "run: docker ps --all"))

    refused = lab.run_here(book, "--resume", "--yes", "--rerun-unknown")
    assert refused.returncode == 2
    assert "the runbook changed since run" in refused.stderr and "--force" in refused.stderr
    assert "-    run: docker ps\n+    run: docker ps --all" in refused.stderr
    assert journal_path(lab.state).read_bytes() == before  # refused before anything was written

    forced = lab.run_here(book, "--resume", "--yes", "--rerun-unknown", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert (
        "resuming although the runbook changed" in forced.stderr
        and "+    run: docker ps --all" in forced.stderr
    )
    assert [c[-1] for node in lab.nodes for c in calls(node, "docker")] == ["app:1.4.2", "--all"] * 2
    assert_finished_once(lab)


def test_values_come_back_from_the_journal(lab: Lab) -> None:
    """The first run had `--var release=1.4.2`; the resume is not given it, and uses the journal's."""
    cut_short(lab)
    resumed = lab.run_here(lab.book, "--resume", "--yes", "--rerun-unknown")
    assert resumed.returncode == 0, resumed.stderr
    header, *_ = records = journal(lab.state)
    assert header["variables"] == {"release": "1.4.2"}
    [again] = [r for r in records if r["type"] == "resumed"]
    assert again["variables"] == {"release": "1.4.2"} and "--rerun-unknown" in again["argv"]
    assert_nothing_done_twice(lab)  # `docker pull app:1.4.2` ran (once) before; `finish` ran after the resume


def test_resume_reruns_only_the_hosts_that_failed(lab: Lab) -> None:
    first, second = lab.nodes
    first.stand_in("docker", exit_code=1)  # `docker pull` fails on the first node only
    failed = lab.run_here(lab.book, "--yes", "--var", "release=1.4.2")
    assert failed.returncode == 1 and f"run failed: prepare@{first.address}" in failed.stdout
    first.stand_in("docker")  # fixed
    resumed = lab.run_here(lab.book, "--resume", "--yes")  # a failure is known: nothing to ask
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"failed, run again: prepare@{first.address}" in resumed.stdout
    assert calls(first, "docker") == [["docker", "pull", "app:1.4.2"]] * 2 + [["docker", "ps"]]
    assert calls(second, "docker") == [["docker", "pull", "app:1.4.2"], ["docker", "ps"]]
    assert fold(journal(lab.state))[("prepare", first.address)] == "ok"


def test_resume_of_a_run_that_finished_well_is_refused(lab: Lab) -> None:
    done = lab.run_here(lab.book, "--yes", "--var", "release=1.4.2")
    assert done.returncode == 0, done.stderr
    again = lab.run_here(lab.book, "--resume", "--yes")
    assert again.returncode == 2 and "no unfinished run of 'resume-me'" in again.stderr
    named = lab.run_here(lab.book, "--resume", run_dirs(lab.state)[0].name, "--yes")
    assert named.returncode == 2 and "finished well; there is nothing to resume" in named.stderr


@pytest.mark.parametrize(
    "damage",
    [
        "rm -rf {state}/runs/*",
        "for d in {state}/runs/*; do rm $d/journal.jsonl; mkdir $d/journal.jsonl; done",
    ],
    ids=["run-directory-removed", "journal-replaced-by-a-directory"],
)
def test_journal_lost_mid_run_stops_before_the_next_step(lab: Lab, damage: str) -> None:
    first, _ = lab.nodes
    steps = f"""\
  - id: damage
    title: Lose the journal
    on: nodes
    concurrency: 1
    run: {damage.format(state=lab.state)}
  - id: next
    title: Must not run
    on: nodes
    run: docker ps
"""
    book = lab.write(nodes_runbook("lose-journal", steps, [first]), "lose.yml")
    result = lab.run_here(book, "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: cannot write journal" in result.stderr
    assert "the journal was deleted while the run was writing it" in result.stderr
    assert "▶ [1/2] damage" in result.stdout and "▶ [2/2] next" not in result.stdout
    assert calls(first, "docker") == []
