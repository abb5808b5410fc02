"""A host's spare session (`engine.executors.sshspare`): opened and its wrapper started while the run waits on
something else, then taken by the host's next command; never used, it leaves nothing on the node. Against
real sshd nodes whose log counts the sessions they start."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sshd import SSHDCluster, SSHDNode
from test_connection_loss import sshd_session_of
from test_executors_ssh import options, target
from test_node_cost import _held_shells, _node_files, _sessions, logged  # noqa: F401 - `logged` is a fixture

from engine.errors import ConnectionFailed
from engine.executors import nodefiles, ssh_executor
from engine.executors.ssh import SSHExecutor
from runbooks import Nodes, journal, nodes_runbook, operator_lab, wait_for, write_runbook

pytestmark = pytest.mark.ssh


@pytest.fixture
def probed(logged: tuple[SSHExecutor, SSHDNode]) -> tuple[SSHExecutor, SSHDNode]:  # noqa: F811
    """`logged` (a node whose sshd logs every session), probed: its control channel held, as in a run."""
    assert logged[0].probe([]) == ("linux", [])
    return logged


def _fifos(node: SSHDNode) -> list[Path]:
    """The FIFOs of wrappers waiting on the node: a spare's are there before its command is known."""
    directory = node.home / nodefiles.DIR
    return sorted(directory.glob("*.o")) if directory.exists() else []


def _warmed(ssh: SSHExecutor, node: SSHDNode) -> int:
    """Warm the host; once its spare's wrapper is up, the pid of that wrapper (its files are named after it)."""
    ssh.warm()
    wait_for(lambda: _fifos(node), "the spare's wrapper to make its FIFOs", timeout=10)
    [fifo] = _fifos(node)
    return int(fifo.name.split("-")[0])


def test_the_next_command_runs_on_the_spare_session(probed: tuple[SSHExecutor, SSHDNode]) -> None:
    """warm() opens one session ahead; the command then runs in it, exactly as in a session of its own: its
    script, working directory and environment byte for byte, its group the spare's wrapper."""
    ssh, node = probed
    before = _sessions(node)
    spare = _warmed(ssh, node)
    assert _sessions(node) - before == 1
    workdir = node.home / "a dir\nwith a line break"
    workdir.mkdir()
    groups: list[int] = []
    result = ssh.run(
        'printf "%s|" "$(pwd)" "$VALUE"; cat <<\'END\'\n  two \\\\ spaces\t\nEND\nprintf "err\\n" >&2',
        cwd=str(workdir),
        env={"VALUE": " a=b $HOME `x` \\n "},
        secrets={"SECRET": "s3cret\nline"},
        on_group=lambda pgid, started: groups.append(pgid),
    )
    assert result.ok, result
    assert result.stdout == f"{workdir}| a=b $HOME `x` \\n |  two \\\\ spaces\t\n"
    assert result.stderr == "err\n"
    assert groups == [spare]  # the spare's wrapper led the command's group
    assert _sessions(node) - before == 1  # no session of its own
    assert ssh.run("true").ok  # the next command (no spare now) opens its own
    assert _sessions(node) - before == 2


def test_a_spare_never_used_leaves_nothing_on_the_node(probed: tuple[SSHExecutor, SSHDNode]) -> None:
    """The run ends before the host's next command: closing the spare ends its wrapper's input, and it exits
    with its FIFOs and files removed (nothing ran, nothing for a resume to read)."""
    ssh, node = probed
    spare = _warmed(ssh, node)
    assert Path(f"/proc/{spare}").exists()
    ssh.close()
    wait_for(lambda: not Path(f"/proc/{spare}").exists(), "the spare's wrapper to end", timeout=10)
    wait_for(lambda: not _node_files(node), "the spare's files to be removed", timeout=10)


def test_a_spare_whose_wrapper_is_gone_gives_way_to_a_session_of_its_own(
    probed: tuple[SSHExecutor, SSHDNode],
) -> None:
    """Something on the node killed the waiting wrapper: the command is not lost with it, it opens its own.
    (Killed in the moment before the command is sent, before sshd said so, the command fails unstarted, as
    a command whose wrapper is killed before it reports its group always has: the step fails, nothing ran.)"""
    ssh, node = probed
    spare = _warmed(ssh, node)
    before = _sessions(node)
    os.kill(spare, signal.SIGKILL)
    held = ssh._spare._channel  # white box: the engine hears of the end once sshd tells it (a round trip)
    assert held is not None
    wait_for(held.exit_status_ready, "sshd to tell the spare's wrapper ended", timeout=10)
    result = ssh.run("echo fine")
    assert (result.ok, result.stdout) == (True, "fine\n"), result
    assert _sessions(node) - before == 1


def test_warming_a_host_that_runs_a_command_opens_nothing(probed: tuple[SSHExecutor, SSHDNode]) -> None:
    """A spare is opened only while the host runs nothing: with its commands and the control channel, a host
    then never holds more sessions than its commands need plus one."""
    ssh, node = probed
    release = node.home / "release"
    started: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(
            ssh.run,
            f'n=0; while [ ! -e "{release}" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done',
            timeout=60,
            on_group=lambda pgid, at: started.append(pgid),
        )
        wait_for(lambda: started, "the command to start", timeout=10)
        before = _sessions(node)
        ssh.warm()
        release.touch()
        assert running.result(timeout=30).ok
    assert _sessions(node) == before


@contextmanager
def _limited(sshd_cluster: SSHDCluster, address: str, sessions: int) -> Iterator[SSHExecutor]:
    """A probed executor for a node whose sshd allows `sessions` sessions at once (MaxSessions); once it is
    closed, the node keeps no files."""
    node = sshd_cluster.extra(
        address, sshd_cluster.authorized_keys, extra_config=f"Match all\n  MaxSessions {sessions}\n"
    )
    node.reset()
    ssh = ssh_executor(target(node), options(node))
    assert isinstance(ssh, SSHExecutor)
    try:
        assert ssh.probe([]) == ("linux", [])
        yield ssh
    finally:
        ssh.close()
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)


def test_a_host_with_one_session_gets_no_spare_and_works_as_before(sshd_cluster: SSHDCluster) -> None:
    """sshd's MaxSessions 1: the held probe session leaves none to spare; the refusal is remembered (no
    spare is tried again) and the commands run as they did without spares."""
    with _limited(sshd_cluster, "127.0.0.141", 1) as ssh:
        ssh.warm()
        assert ssh._spare.refused
        assert ssh.run("echo hi").stdout == "hi\n"  # the control channel gave its session up for it
        ssh.warm()  # refused before: not tried again, though the host has a session free now
        assert ssh._spare._channel is None
        assert ssh.run("echo again").stdout == "again\n"


def test_a_session_refused_for_the_spare_it_holds_closes_the_spare(sshd_cluster: SSHDCluster) -> None:
    """sshd's MaxSessions 2, taken by the control channel and a spare: a session of another kind (a resume
    asking how a command ended) is refused, so the idle spare is closed for it, at once."""
    with _limited(sshd_cluster, "127.0.0.143", 2) as ssh:
        spare = _warmed(ssh, sshd_cluster.extras["127.0.0.143"])
        assert ssh.ended(999999, None) is None  # on a session of its own: no such command kept here
        wait_for(lambda: not Path(f"/proc/{spare}").exists(), "the spare to be closed", timeout=10)
        assert ssh.run("echo hi").stdout == "hi\n"


def test_a_run_warms_its_hosts_after_the_preflight_and_their_first_command_takes_the_spare(
    sshd_nodes: Nodes, home: Path, tmp_path: Path
) -> None:
    """While the first (local) step waits, the node's spare is opened: the local step sees its FIFO appear,
    and the node step's journaled process group is that spare's wrapper."""
    [node] = sshd_nodes(1)
    lab = operator_lab(tmp_path / "work", home, [node])
    waiting, seen = node.home / nodefiles.DIR, tmp_path / "seen"
    steps = (
        "  - id: local-wait\n    title: Wait for the node's spare session\n"
        f"    run: n=0; until ls {waiting}/*.o >{seen} 2>/dev/null; do [ $n -lt 500 ] || exit 1; sleep 0.02;"
        " n=$((n+1)); done\n"
        "  - id: on-the-node\n    title: On the node\n    on: nodes\n    run: echo hi\n"
    )
    done = lab.run_here(write_runbook(lab.root, nodes_runbook("spare", steps, [node])), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    [fifo] = seen.read_text().split()
    groups = [r["pgid"] for r in journal(lab.root / "state") if r["type"] == "process-group"]
    assert groups[1:] == [int(Path(fifo).name.split("-")[0])], (groups, fifo)
    wait_for(lambda: not _node_files(node), "the close to delete the node files", timeout=10)


def test_a_host_whose_command_ended_gets_its_next_session_ready_for_a_later_step(
    sshd_nodes: Nodes, home: Path, tmp_path: Path
) -> None:
    """Node step, local step, node step: once the node's first command ended, its next session is opened
    while the local step runs (which sees its wrapper waiting), and the second node step runs in it."""
    [node] = sshd_nodes(1)
    lab = operator_lab(tmp_path / "work", home, [node])
    waiting, seen = node.home / nodefiles.DIR, tmp_path / "seen"
    live = (
        f"n=0; while [ $n -lt 500 ]; do for f in {waiting}/*.o; do p=${{f##*/}}; p=${{p%%-*}};"
        f' [ -p "$f" ] && [ -d /proc/$p ] && {{ echo $p >{seen}; exit 0; }}; done; sleep 0.02; n=$((n+1)); done;'
        " exit 1"
    )
    steps = (
        "  - id: first\n    title: First on the node\n    on: nodes\n    run: echo one\n"
        f"  - id: local-wait\n    title: Wait for the node's next session\n    run: '{live}'\n"
        "  - id: second\n    title: Second on the node\n    on: nodes\n    run: echo two\n"
    )
    done = lab.run_here(write_runbook(lab.root, nodes_runbook("again", steps, [node])), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    groups = {r["step"]: r["pgid"] for r in journal(lab.root / "state") if r["type"] == "process-group"}
    assert groups["second"] == int(seen.read_text()) != groups["first"], groups


def test_a_spare_lost_with_its_connection_is_no_refusal(probed: tuple[SSHExecutor, SSHDNode]) -> None:
    """The connection dies while a spare is being opened (its sshd killed): that is no MaxSessions refusal,
    so once a command has reconnected, the host gets a spare again."""
    ssh, node = probed
    [held] = _held_shells(node)
    session = sshd_session_of(held)
    os.kill(session, signal.SIGSTOP)  # the open below waits on it, its connection still up
    warming = threading.Thread(target=ssh.warm)
    warming.start()
    wait_for(lambda: ssh._spare._opening is not None, "the spare's open to be under way", timeout=10)
    os.kill(session, signal.SIGKILL)
    os.kill(session, signal.SIGCONT)
    warming.join(30)
    assert not warming.is_alive() and not ssh._spare.refused
    assert ssh.run("true").ok  # a new connection
    before = {p.name for p in _fifos(node)}
    ssh.warm()
    wait_for(lambda: {p.name for p in _fifos(node)} - before, "a spare on the new connection", timeout=10)


def test_a_command_that_cannot_start_keeps_the_node_files_it_was_to_delete(sshd_cluster: SSHDCluster) -> None:
    """A command takes the files of ended commands to delete as it starts; when it cannot start (here sshd
    refuses its session: MaxSessions 1, taken), they stay to delete, by a later command or the close."""
    with _limited(sshd_cluster, "127.0.0.141", 1) as ssh:
        node = sshd_cluster.extras["127.0.0.141"]
        release, started = node.home / "release", threading.Event()
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(
                ssh.run,
                f'n=0; while [ ! -e "{release}" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done',
                timeout=60,
                on_group=lambda pgid, at: started.set(),
            )
            assert started.wait(10)
            ended = [f"{900000 + i}-1" for i in range(nodefiles.DELETE_AT_ONCE)]
            for ident in ended:
                (node.home / nodefiles.DIR / f"{ident}.out").write_text("kept by an ended command\n")
            ssh._ended.add(*ended)
            with pytest.raises(ConnectionFailed):
                ssh.run("true")
            release.touch()
            assert running.result(timeout=30).ok
    # `_limited` waits for the close to leave no node files: the 8 above included
