"""What a command and a host cost a node, against real sshd nodes: the processes a command's wrapper starts,
the sessions a host's connection opens. The nodes run on this machine, so /proc shows their processes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sshd import SSHDCluster, SSHDNode
from test_executors_ssh import options, target

from engine.executors import nodefiles, ssh_executor, wrapper
from engine.executors.ssh import SSHExecutor
from runbooks import wait_for

pytestmark = pytest.mark.ssh

Nodes = Callable[[int], list[SSHDNode]]
_WRAPPER = wrapper._WRAPPER.encode()  # what the login shell hands to `sh -c`


@pytest.fixture
def executor(sshd_nodes: Nodes) -> Iterator[tuple[SSHExecutor, SSHDNode]]:
    [node] = sshd_nodes(1)
    made = ssh_executor(target(node), options(node))
    assert isinstance(made, SSHExecutor)
    yield made, node
    made.close()


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, pgrp, ...); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return []


def _members(pgid: int) -> dict[int, list[bytes]]:
    """The live processes of group `pgid` on this machine, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            found[int(entry.name)] = _cmdline(int(entry.name))
    return found


_WAIT = 'n=0; while [ ! -e "$HOME/release" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done'


def _start_blocked(executor: SSHExecutor, home: Path, script: str = _WAIT) -> tuple[object, int, str | None]:
    """Run `script` (by default: wait, bounded, for `release` in the node's home) after touching `started`
    there; back once it has."""
    groups: list[tuple[int, str | None]] = []
    pool = ThreadPoolExecutor(max_workers=1)
    running = pool.submit(
        executor.run,
        f'touch "$HOME/started"; {script}',
        timeout=60,
        on_group=lambda pgid, at: groups.append((pgid, at)),
    )
    pool.shutdown(wait=False)
    wait_for(lambda: (home / "started").exists(), "the command to start on the node", timeout=30)
    [(pgid, started)] = groups
    return running, pgid, started


def test_the_wrapper_leads_the_group_sshd_made_no_setsid_no_second_sh(
    executor: tuple[SSHExecutor, SSHDNode],
) -> None:
    """sshd puts every session command in a new session and the login shell `exec`s the wrapper's `sh`: that
    `sh` leads the group itself and runs the script as its child. No `setsid`, no second `sh` in between."""
    ssh, node = executor
    running, pgid, _ = _start_blocked(ssh, node.home)
    try:
        members = _members(pgid)
        leader = members[pgid]
        ppid = int((_stat(pgid) or ["", "0"])[1])
        assert leader[:2] == [b"sh", b"-c"] and _cmdline(ppid)[0].startswith(b"sshd"), (
            leader,
            _cmdline(ppid),
        )
        # The session's one wrapper: no outer wrapper above a `setsid sh`.
        carriers = [
            pid
            for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if (_stat(pid) or ["", ""])[1] == str(ppid) and _WRAPPER in _cmdline(pid)
        ]
        assert carriers == [pgid], carriers
        names = sorted(os.path.basename(line[0]).decode() for line in members.values() if line)
        assert "setsid" not in names and names.count("tee") == 2, names
        # The script's shell is the leader's child, in its group (a kill of the group reaches it).
        [script] = [pid for pid, line in members.items() if line[1:2] == [b"-ec"]]
        assert int((_stat(script) or ["", "0"])[1]) == pgid
    finally:
        (node.home / "release").touch()
    result = running.result(timeout=30)  # type: ignore[attr-defined]
    assert result.ok, result.stderr


@pytest.mark.parametrize(("trap", "code"), [("", 128 + signal.SIGTERM), ("trap 'exit 7' TERM;", 7)])
def test_a_group_signal_from_elsewhere_gives_the_scripts_own_exit_status(
    executor: tuple[SSHExecutor, SSHDNode], trap: str, code: int
) -> None:
    """The wrapper leads the group, so a `kill -TERM -PGID` on the node reaches it too: it lives on, waits
    for the script and reports the script's exit status, on the channel and in the node's status file."""
    ssh, node = executor
    # In the background: a foreground child killed by the signal makes dash say so, on a stream whose `tee` the
    # same signal killed (SIGPIPE, as before this wrapper).
    running, pgid, started = _start_blocked(ssh, node.home, f"{trap} ({_WAIT}) & wait")
    os.killpg(pgid, signal.SIGTERM)
    result = running.result(timeout=30)  # type: ignore[attr-defined]
    assert result.exit_code == code and not result.interrupted, result.stderr
    ended = ssh.ended(pgid, started)
    assert ended is not None and ended.exit_code == code
    wait_for(lambda: not _members(pgid), "the group to be gone", timeout=10)


def test_a_timeout_kills_the_wrapper_and_the_script_together(executor: tuple[SSHExecutor, SSHDNode]) -> None:
    """A timeout stops the whole group, its leader (the wrapper) included, even when the script ignores
    SIGTERM (SIGKILL then ends it, the wrapper with it: no exit status, the run reports the timeout)."""
    ssh, _ = executor
    groups: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(
            ssh.run,
            "trap '' TERM; n=0; while [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done",
            timeout=1,
            on_group=lambda pgid, _: groups.append(pgid),
        ).result(timeout=30)
    assert result.timed_out and result.exit_code is None, result
    wait_for(lambda: not _members(groups[0]), "the whole group to be gone", timeout=10)


# -- the control channel: the probe's session, held for kills and the close's cleanup --------------------------


@pytest.fixture
def logged(sshd_cluster: SSHDCluster) -> Iterator[tuple[SSHExecutor, SSHDNode]]:
    """An executor for a node whose sshd logs every session it starts (LogLevel VERBOSE)."""
    node = sshd_cluster.extra("127.0.0.140", sshd_cluster.authorized_keys, log_level="VERBOSE")
    node.reset()
    made = ssh_executor(target(node), options(node))
    assert isinstance(made, SSHExecutor)
    yield made, node
    made.close()


def _sessions(node: SSHDNode) -> int:
    """Sessions sshd started since it started (OpenSSH logs "Starting session: command ..." at VERBOSE)."""
    return node.log.read_text().count("Starting session: command")


def _node_files(node: SSHDNode) -> list[str]:
    directory = node.home / nodefiles.DIR
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_the_close_deletes_the_node_files_on_the_probes_held_session(
    logged: tuple[SSHExecutor, SSHDNode],
) -> None:
    """Preflight's probe session stays open: at the end the node files go with a line on it, no session of
    their own (it was one more session per host and run: sshd's session setup and a login shell)."""
    ssh, node = logged
    before = _sessions(node)
    assert ssh.probe(["runbook-absent-tool"]) == ("linux", ["runbook-absent-tool"])
    assert ssh.run("echo hi").stdout == "hi\n"
    assert _node_files(node), "the command's files wait on the node for the close"
    ssh.close()
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)
    assert _sessions(node) - before == 2  # the probe's and the command's: none for the close
    wait_for(lambda: not _held_shells(node), "the held sh to end with its input", timeout=10)


def test_without_the_held_session_the_close_opens_one(logged: tuple[SSHExecutor, SSHDNode]) -> None:
    """No probe ran (so nothing is held): the close deletes the files on a session of its own, as before."""
    ssh, node = logged
    before = _sessions(node)
    assert ssh.run("echo hi").ok and _node_files(node)
    ssh.close()
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)
    assert _sessions(node) - before == 2  # the command's and the close's


def _held_shells(node: SSHDNode) -> list[int]:
    """The held `sh` of a control channel on `node`'s sshd (its sentinel is in its command line)."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        if b"runbook-control-" in b" ".join(_cmdline(pid)) and _below(pid, node.process.pid):
            found.append(pid)
    return found


def _below(pid: int, ancestor: int) -> bool:
    for _ in range(20):  # bounded: a process tree is not that deep here
        fields = _stat(pid)
        if fields is None or int(fields[1]) <= 1:
            return False
        pid = int(fields[1])
        if pid == ancestor:
            return True
    return False


def test_a_timeout_kills_with_lines_on_the_held_session(logged: tuple[SSHExecutor, SSHDNode]) -> None:
    """SIGTERM then SIGKILL of a timed-out command's group: two lines on the control channel (builtin
    `kill`), not two sessions of their own."""
    ssh, node = logged
    ssh.probe([])
    before = _sessions(node)
    result = ssh.run("trap '' TERM; n=0; while [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done", timeout=1)
    assert result.timed_out and result.exit_code is None
    assert _sessions(node) - before == 1  # the command's own
    assert ssh.transport is not None and ssh.transport.is_active()


def test_a_held_session_that_is_gone_is_no_stalled_peer(logged: tuple[SSHExecutor, SSHDNode]) -> None:
    """The held `sh` killed on the node: a timeout's kills go on sessions of their own, the connection stays
    (only a kill nobody answers means a stalled peer), and the close still deletes the node files."""
    ssh, node = logged
    ssh.probe([])
    [held] = _held_shells(node)
    os.kill(held, signal.SIGKILL)
    transport = ssh.transport
    before = _sessions(node)
    result = ssh.run("trap '' TERM; n=0; while [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done", timeout=1)
    assert result.timed_out and result.exit_code is None
    assert ssh.transport is transport and transport is not None and transport.is_active()
    assert _sessions(node) - before == 3  # the command's, SIGTERM's and SIGKILL's own
    assert ssh.run("true").ok
    ssh.close()
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)


def test_a_host_with_one_session_gets_the_control_channels_slot_for_its_commands(
    sshd_cluster: SSHDCluster,
) -> None:
    """sshd's MaxSessions 1: the held probe session would leave no session for a command; the executor ends
    it when a command's session is refused, and works as it did before (the close on a session of its own)."""
    node = sshd_cluster.extra(
        "127.0.0.141", sshd_cluster.authorized_keys, extra_config="Match all\n  MaxSessions 1\n"
    )
    node.reset()
    ssh = ssh_executor(target(node), options(node))
    try:
        assert ssh.probe([]) == ("linux", [])
        assert ssh.run("echo hi").stdout == "hi\n"
        assert ssh.run("true").ok
    finally:
        ssh.close()
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)


def test_the_probe_learns_a_linux_kernel_without_starting_uname(
    executor: tuple[SSHExecutor, SSHDNode],
) -> None:
    """Preflight's probe reads the kernel's name from /proc/version on Linux: `uname` would be a fork and an
    exec on every host of every run. A recording `uname` first on the node's PATH must stay unused."""
    made, node = executor
    called = node.home / "uname-called"
    stand_in = node.bin_dir / "uname"
    stand_in.write_text(f'#!/bin/sh\necho "$@" >> {called}\nexec /bin/uname "$@"\n')
    stand_in.chmod(0o755)
    try:
        assert made.probe(["sh"]) == ("linux", [])  # nothing missing
        assert not called.exists()
        assert made.run("uname -s", timeout=30).stdout == "Linux\n" and called.exists()  # the stand-in works
    finally:
        stand_in.unlink()


def test_a_signal_to_the_leader_as_the_script_ends_keeps_the_scripts_exit_status(tmp_path: Path) -> None:
    """The leader's `wait`, cut short by a caught signal while the script was being reaped, then a second
    `wait`: the status is the script's own. (Waiting again only while `kill -0` found the script kept the
    cut-short 128+signal about one run in ten here.) Run as sshd runs it: a new session, so the wrapper's
    `sh` leads the group; the script's parent is that leader."""
    command = wrapper.command()
    given = wrapper.job("runbook-pgid-test", "sh", None, "kill -USR1 $PPID; exit 7")
    given += wrapper.environment({}) + b"go\n"  # the go right behind the environment
    codes = [
        subprocess.run(
            ["sh", "-c", command],
            input=given,
            capture_output=True,
            start_new_session=True,
            env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
            timeout=30,
        ).returncode
        for _ in range(30)
    ]
    assert codes == [7] * 30
