"""The run lock, end to end: one run of a runbook at a time, and a killed run never blocks the next one."""

from __future__ import annotations

import getpass
import json
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e import Lab, block, blocking_stand_in, calls, fold, nodes_runbook, unblock, wait_for
from sshd import SSHDNode

pytestmark = pytest.mark.ssh

Nodes = Callable[[int], list[SSHDNode]]

STEPS = """\
  - id: drain
    title: Drain the node
    on: nodes
    run: slow drain
  - id: upgrade
    title: Upgrade
    on: nodes
    run: docker pull app:2
"""


@pytest.fixture
def lab(tmp_path: Path, sshd_nodes: Nodes) -> Lab:
    [node] = sshd_nodes(1)
    node.stand_in("docker")
    blocking_stand_in(node, "slow")
    lab = Lab(tmp_path / "lab", [node])
    lab.write(nodes_runbook("locked", [node], STEPS))
    return lab


def lock_file(lab: Lab) -> Path:
    return lab.state / "locks" / "locked.lock"


def test_a_second_run_is_refused_with_who_holds_the_lock(lab: Lab) -> None:
    [node] = lab.nodes
    started = block(node, "slow")
    first = lab.start(lab.book, "--yes")
    try:
        wait_for(started.exists, "the first run to block in its step")
        second = lab.run(lab.book, "--yes")
        assert second.returncode == 2
        holder = f"{getpass.getuser()}@{socket.gethostname()} (pid {first.process.pid}) since "
        assert "runbook 'locked' is being run by " + holder in second.stderr
        assert f"run {lab.run_dirs()[0].name}" in second.stderr
        assert str(lock_file(lab)) in second.stderr
        resumed = lab.run(lab.book, "--resume", "--yes")  # resuming it is refused just the same
        assert resumed.returncode == 2 and holder in resumed.stderr
        assert len(lab.run_dirs()) == 1 and calls(node, "slow") == [["slow", "drain"]]
    finally:
        unblock(node, "slow")
    code, out, err = first.finish()
    assert code == 0, out + err
    assert lock_file(lab).read_text() == ""  # released: it names nobody
    assert lab.run(lab.book, "--yes").returncode == 0  # and the next run takes it


def test_a_lock_left_by_a_killed_run_is_taken_over(lab: Lab) -> None:
    [node] = lab.nodes
    started = block(node, "slow")
    first = lab.start(lab.book, "--yes")
    wait_for(started.exists, "the first run to block in its step")
    first.stop(signal.SIGKILL)
    unblock(node, "slow")
    left = json.loads(lock_file(lab).read_text())
    assert left["pid"] == first.process.pid  # the dead run still "holds" it, on paper

    again = lab.run(lab.book, "--resume", "--yes", "--rerun-unknown")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"took over the lock left by {left['user']}@{left['host']} (pid {left['pid']})" in again.stdout
    assert "that process is gone" in again.stdout
    assert set(fold(lab.records()).values()) == {"ok"}
    assert lock_file(lab).read_text() == ""
