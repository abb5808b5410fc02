"""A connection lost or stalled under a running command: the step is *unknown* on that host (the command may
still be running there), found within a bounded time, and the run stops; a resume asks before running it again.

Real sshd nodes; the fault is made on the node's own per-connection sshd process (the parent of the session's
shell): SIGKILL drops the connection, SIGSTOP stalls it (TCP stays up, nothing is answered).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks import Lab, Nodes, fold, journal, nodes_runbook, operator_lab, summary_rows, wait_for

pytestmark = pytest.mark.ssh

STEPS = """\
  - id: long
    title: A long command
    on: nodes
{timeout}    run: |
      ps -o pgid= -p $$ > "$HOME/long.pid"  # its group: on a node, the wrapper leads it
      sleep 600
      touch "$HOME/long.finished"
  - id: after
    title: Must not run after an unknown outcome
    on: nodes
    run: touch "$HOME/after"
"""


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def sshd_session_of(pid: int) -> int:
    """The per-connection sshd process above a command of that connection."""
    while pid > 1:
        pid = _parent(pid)
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sshd"):
            return pid
    raise AssertionError("no sshd above the command")


@pytest.fixture
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Iterator[Lab]:
    lab = operator_lab(tmp_path / "lab", home, sshd_nodes(1))
    yield lab
    pid_file = lab.nodes[0].home / "long.pid"
    if pid_file.exists():  # the command outlived its connection (as it does): end it
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _start_and_fault(lab: Lab, signum: int, timeout: str = "", ssh_config: str = "") -> tuple[int, str, int]:
    [node] = lab.nodes
    if ssh_config:
        config = lab.home / ".ssh" / "config"
        config.write_text(config.read_text() + ssh_config)
    lab.write(nodes_runbook("lossy", STEPS.format(timeout=timeout), [node]))
    running = lab.start(lab.book, "--yes")
    pid_file = node.home / "long.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the command to start", timeout=20)
    session = sshd_session_of(int(pid_file.read_text()))
    os.kill(session, signum)
    try:  # the command sleeps 600 s: a run that waited for it, not for the fault, ends here as a failure
        code, out, err = running.finish(timeout=40)
    finally:
        if signum == signal.SIGSTOP:  # a stopped process dies of SIGKILL too; sshd may reap it at once
            try:
                os.kill(session, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return code, out + err, session


def test_a_dropped_connection_makes_the_step_unknown_and_stops_the_run(lab: Lab) -> None:
    code, output, _ = _start_and_fault(lab, signal.SIGKILL)
    [node] = lab.nodes
    assert code == 1, output
    assert summary_rows(output)[0][2] == "unknown", output
    records = journal(lab.state)
    [end] = [r for r in records if r["type"] == "step-end"]
    assert end["status"] == "unknown" and "lost the connection" in end["reason"]
    assert fold(records) == {("long", node.address): "unknown"}  # `after` never started
    assert not (node.home / "after").exists()
    # The command itself is still running on the node: exactly why the outcome is not "failed".
    assert os.path.exists(f"/proc/{int((node.home / 'long.pid').read_text())}")

    # A resume finds the first copy still running (its process group is journaled) and, with nobody to
    # choose (no terminal, no flag), leaves it alone: nothing runs again.
    resumed = lab.run(lab.book, "--yes", "--resume")
    assert "is STILL RUNNING" in resumed.stdout and "left alone; nothing was started again" in resumed.stderr
    assert not (node.home / "after").exists()


def test_a_stalled_peer_is_declared_dead_by_keepalives_that_expect_answers(lab: Lab) -> None:
    """No step timeout: before, the run waited forever on a peer that answers nothing."""
    code, output, _ = _start_and_fault(
        lab, signal.SIGSTOP, ssh_config="  ServerAliveInterval 1\n  ServerAliveCountMax 2\n"
    )
    assert code == 1, output
    [end] = [r for r in journal(lab.state) if r["type"] == "step-end"]
    assert end["status"] == "unknown"
    assert "no answer to keepalives for 2s" in end["reason"]
    assert not (lab.nodes[0].home / "after").exists()


def test_a_step_timeout_ends_the_step_even_when_the_peer_is_stalled(lab: Lab) -> None:
    """Default keepalives (15 s x 3): the timeout's kill finds no answer and gives up on the peer in 5 s.
    Before, `timeout: 12` ended after 34 s reporting "killed after 12s"."""
    code, output, _ = _start_and_fault(lab, signal.SIGSTOP, timeout="    timeout: 2\n")
    assert code == 1, output
    [end] = [r for r in journal(lab.state) if r["type"] == "step-end"]
    assert end["status"] == "unknown"
    assert end["reason"].startswith("timed out after 2s, then lost the connection")
    assert "killed after" not in output
