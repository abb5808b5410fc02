"""The run lock, end to end: one run of a runbook at a time, and a killed run never blocks the next one."""

from __future__ import annotations

import getpass
import json
import signal
import socket
import threading
from pathlib import Path

import paramiko
import pytest

from runbooks import (
    Lab,
    Nodes,
    block,
    blocking_lab,
    calls,
    fold,
    journal,
    nodes_runbook,
    run_dirs,
    unblock,
    wait_for,
)

pytestmark = pytest.mark.ssh

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
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Lab:
    lab = blocking_lab(tmp_path / "lab", home, sshd_nodes(1))
    lab.write(nodes_runbook("locked", STEPS, lab.nodes))
    return lab


def lock_file(lab: Lab) -> Path:
    return lab.state / "locks" / "locked.lock"


def test_a_second_run_is_refused_with_who_holds_the_lock(lab: Lab) -> None:
    [node] = lab.nodes
    started = block(node, "slow")
    first = lab.start(lab.book, "--yes")
    try:
        wait_for(started.exists, "the first run to block in its step")
        second = lab.run_here(lab.book, "--yes")
        assert second.returncode == 2
        holder = f"{getpass.getuser()}@{socket.gethostname()} (pid {first.process.pid}) since "
        assert "runbook 'locked' is being run by " + holder in second.stderr
        assert f"run {run_dirs(lab.state)[0].name}" in second.stderr
        assert str(lock_file(lab)) in second.stderr
        resumed = lab.run_here(lab.book, "--resume", "--yes")  # resuming it is refused just the same
        assert resumed.returncode == 2 and holder in resumed.stderr
        assert len(run_dirs(lab.state)) == 1 and calls(node, "slow") == [["slow", "drain"]]
    finally:  # let the first run finish (bounded) whatever happened above: no process outlives the test
        unblock(node, "slow")
        code, out, err = first.finish()
    assert code == 0, out + err
    assert lock_file(lab).read_text() == ""  # released: it names nobody
    assert lab.run_here(lab.book, "--yes").returncode == 0  # and the next run takes it


def test_a_run_refused_by_the_lock_connected_early_and_left_nothing(lab: Lab) -> None:
    """A run connects in the background while it takes its lock; refused, it closes that connection, and
    it never trusts a new host key before its preflight (that waits for the phase the run never reached)."""
    [node] = lab.nodes
    known_hosts = lab.home / ".ssh" / "known_hosts"
    started = block(node, "slow")
    first = lab.start(lab.book, "--yes")
    try:
        wait_for(started.exists, "the first run to block in its step")
        logins = node.accepted_connections()
        transports = set(_transports())  # those another test left behind are not this run's
        refused = lab.run_here(lab.book, "--yes")
        assert refused.returncode == 2 and "is being run by" in refused.stderr
        assert "connecting to" not in refused.stdout + refused.stderr  # the preflight phase never came
        wait_for(lambda: node.accepted_connections() == logins + 1, "the early connection's login")
        wait_for(lambda: set(_transports()) <= transports, "the early connection to be closed")
        known = known_hosts.read_text()
        known_hosts.write_text("")  # the node's key unknown to the next run, which may trust it
        trusting = lab.run_here(lab.book, "--yes", "--trust-new-host-keys")
        assert trusting.returncode == 2 and known_hosts.read_text() == ""
        assert node.accepted_connections() == logins + 1  # it did not even connect
        known_hosts.write_text(known)
    finally:  # let the first run finish (bounded) whatever happened above
        unblock(node, "slow")
        code, out, err = first.finish()
    assert code == 0, out + err


def _transports() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, paramiko.Transport)]


def test_a_lock_left_by_a_killed_run_is_taken_over(lab: Lab) -> None:
    [node] = lab.nodes
    started = block(node, "slow")
    first = lab.start(lab.book, "--yes")
    wait_for(started.exists, "the first run to block in its step")
    first.stop(signal.SIGKILL)
    unblock(node, "slow")
    left = json.loads(lock_file(lab).read_text())
    assert left["pid"] == first.process.pid  # the dead run still "holds" it, on paper

    again = lab.run_here(lab.book, "--resume", "--yes", "--rerun-unknown")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"took over the lock left by {left['user']}@{left['host']} (pid {left['pid']})" in again.stdout
    assert "that process is gone" in again.stdout
    assert set(fold(journal(lab.state)).values()) == {"ok"}
    assert lock_file(lab).read_text() == ""
