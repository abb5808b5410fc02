"""SSHExecutor against real sshd nodes (tests/sshd.py): the executor contract, plus what only SSH has —
host keys, ~/.ssh/config, ProxyJump, one transport per host, the session limit."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
from sshd import SSHDNode, free_port, generate_key
from test_executors_local import ExecutorContract, unique_sleep, wait_until
from test_executors_local import running as running_processes

from engine.errors import ConnectionFailed, HostKeyError
from engine.executors import Executor, heartbeat, resolve_ssh_target, ssh_executor
from engine.executors.ssh import MAX_SESSIONS, SSHExecutor
from engine.executors.wrapper import command as _command
from engine.executors.wrapper import environment as _environment
from engine.executors.wrapper import job as _job
from engine.transports import SSHOptions, SSHTarget

pytestmark = pytest.mark.ssh

Nodes = Callable[[int], list[SSHDNode]]


def target(node: SSHDNode, **changes: object) -> SSHTarget:
    fields: dict[str, object] = {
        "name": f"node-{node.address}",
        "hostname": node.address,
        "user": node.user,
        "port": node.port,
        "key_file": str(node.client_key),
    }
    return SSHTarget(**{**fields, **changes})  # type: ignore[arg-type]


def options(node: SSHDNode, **changes: object) -> SSHOptions:
    return SSHOptions(known_hosts=str(changes.pop("known_hosts", node.known_hosts)), **changes)  # type: ignore[arg-type]


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of an `ssh-ed25519 AAAA...` line, computed independently of paramiko."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@pytest.fixture
def node(sshd_nodes: Nodes) -> SSHDNode:
    return sshd_nodes(1)[0]


@pytest.fixture
def connect(node: SSHDNode) -> Iterator[Callable[..., SSHExecutor]]:
    """Make executors for `node` (keyword changes to its target / options) and close them all afterwards."""
    made: list[SSHExecutor] = []

    def make(known_hosts: object = None, trust_new_keys: bool = False, **changes: object) -> SSHExecutor:
        opts = options(node, known_hosts=known_hosts or node.known_hosts, trust_new_keys=trust_new_keys)
        made.append(ssh_executor(target(node, **changes), opts))
        return made[-1]

    yield make
    for executor in made:
        executor.close()


class TestSSHExecutor(ExecutorContract):
    AT_ONCE = MAX_SESSIONS

    @pytest.fixture
    def executor(self, connect: Callable[..., SSHExecutor]) -> Executor:
        return connect()

    def test_runs_on_the_node_with_its_environment(self, executor: Executor, node: SSHDNode) -> None:
        node.stand_in("kubectl", stdout="applied\n")
        result = executor.run('echo "$RUNBOOK_TEST_NODE $HOME"; kubectl apply -f x.yml')
        assert result.stdout == f"{node.address} {node.home}\napplied\n"
        [call] = node.calls("kubectl")
        assert call["argv"] == ["kubectl", "apply", "-f", "x.yml"] and call["node"] == node.address

    def test_missing_programs_sees_the_node_path(self, executor: Executor, node: SSHDNode) -> None:
        node.stand_in("runbook-node-tool")
        assert executor.missing_programs(["runbook-node-tool", "runbook-absent-tool"]) == [
            "runbook-absent-tool"
        ]


def test_one_transport_for_many_commands(connect: Callable[..., SSHExecutor], node: SSHDNode) -> None:
    before = node.accepted_connections()
    executor = connect()
    executor.connect()
    transport = executor.transport
    for i in range(10):
        assert executor.run(f"echo {i}").stdout == f"{i}\n"
    executor.connect()
    assert executor.transport is transport and transport is not None and transport.is_active()
    assert node.accepted_connections() - before == 1


def test_the_connection_sends_small_packets_at_once_and_acknowledges_at_once(
    connect: Callable[..., SSHExecutor],
) -> None:
    """Nagle off from the first packet, and every read acknowledged at once: sshd leaves Nagle on for
    sessions without a terminal, and its second small packet would otherwise wait up to 40 ms for our
    delayed ACK (measured: the first session after login took 45 ms to open instead of 3)."""
    executor = connect()
    executor.connect()
    assert executor.transport is not None
    sock = executor.transport.sock
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    quickacks: list[int] = []
    real_setsockopt = sock.setsockopt

    def setsockopt(level: int, option: int, value: int) -> None:  # what each read does afterwards
        if (level, option) == (socket.IPPROTO_TCP, socket.TCP_QUICKACK):
            quickacks.append(value)
        real_setsockopt(level, option, value)

    sock.setsockopt = setsockopt  # type: ignore[method-assign]
    assert executor.run("echo one").stdout == "one\n"
    assert quickacks and set(quickacks) == {1}  # every read acknowledged at once


def test_known_hosts_is_read_once_for_many_connections(
    connect: Callable[..., SSHExecutor], node: SSHDNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    load = paramiko.HostKeys.load
    monkeypatch.setattr(paramiko.HostKeys, "load", lambda keys, path: (reads.append(path), load(keys, path)))
    os.utime(node.known_hosts)  # a file changed since the last reading is read again
    for _ in range(3):
        assert connect().run("true").ok
    assert reads == [str(node.known_hosts)]
    with open(node.known_hosts, "a") as known_hosts:  # changed (as trusting a new key does): read again
        known_hosts.write("\n")
    assert connect().run("true").ok and len(reads) == 2


def test_many_connections_share_one_heartbeat_thread_and_one_reading_of_the_key(
    connect: Callable[..., SSHExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[object] = []
    from_path = paramiko.PKey.from_path
    monkeypatch.setattr(
        paramiko.PKey, "from_path", lambda path, *a: (reads.append(path), from_path(path, *a))[1]
    )
    executors = [connect() for _ in range(3)]
    for executor in executors:
        assert executor.run("true").ok
    assert [t.name for t in threading.enumerate()].count("ssh-heartbeat") == 1
    assert len(reads) <= 1  # none when an earlier test already read this key file
    os.utime(executors[0].target.key_file or "")  # the file changed: read again
    assert connect().run("true").ok and len(reads) == 2 - (not reads[:-1])


def test_a_peer_that_answers_keeps_its_connection_through_many_keepalive_rounds(
    connect: Callable[..., SSHExecutor], node: SSHDNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared heartbeat asks again after each answer, and an answered peer is never declared dead."""
    asked: list[float] = []
    ask = heartbeat._ask
    monkeypatch.setattr(heartbeat, "_ask", lambda *args: (asked.append(time.monotonic()), ask(*args))[1])
    executor = connect(alive_interval=0.2, alive_count_max=2)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(executor.run, 'while [ ! -e "$HOME/go" ]; do sleep 0.05; done', timeout=60)
        assert wait_until(lambda: len(asked) >= 4, 30), asked  # four rounds, each answered in time
        (node.home / "go").touch()
        result = waiting.result(timeout=60)
    assert result.ok and result.connection_lost is None, result
    assert executor.transport is not None and executor.transport.is_active()


def test_one_reader_thread_serves_both_streams_of_a_command(connect: Callable[..., SSHExecutor]) -> None:
    executor = connect()
    started: list[str] = []
    start = threading.Thread.start
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), start(self))[1])
        result = executor.run("echo out; echo err >&2")  # both streams at full size: the contract's tests
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert [name for name in started if "-output" in name or "-std" in name] == [f"{executor.host}-output"]


def test_probe_learns_platform_and_missing_programs_in_one_command(
    connect: Callable[..., SSHExecutor], node: SSHDNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    node.stand_in("runbook-node-tool")
    executor = connect()
    sessions: list[object] = []
    open_session = SSHExecutor._open_session
    monkeypatch.setattr(
        SSHExecutor,
        "_open_session",
        lambda self, *a, **k: (sessions.append(a), open_session(self, *a, **k))[1],
    )
    assert executor.probe(["runbook-node-tool", "runbook-absent-tool"]) == ("linux", ["runbook-absent-tool"])
    assert executor.platform() == "linux" and len(sessions) == 1


def test_unknown_host_key_is_refused_and_nothing_runs(
    connect: Callable[..., SSHExecutor], node: SSHDNode, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node.stand_in("deploy")
    before = node.accepted_connections()
    with pytest.raises(HostKeyError) as caught:
        connect(known_hosts=empty).run("deploy")
    message = str(caught.value)
    assert fingerprint(node.host_public_key) in message and "ssh-ed25519" in message
    assert "--trust-new-host-keys" in message and node.known_hosts_name in message
    assert node.calls() == [] and node.accepted_connections() == before
    assert empty.read_text() == ""


def test_trust_new_keys_accepts_and_remembers(
    connect: Callable[..., SSHExecutor], node: SSHDNode, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"  # directory does not exist yet either
    assert connect(known_hosts=known_hosts, trust_new_keys=True).run("true").ok
    assert known_hosts.read_text() == f"{node.known_hosts_name} {node.host_public_key}\n"
    assert connect(known_hosts=known_hosts).run("true").ok  # now known: no flag needed


def test_changed_host_key_is_refused_even_when_trusting_new_keys(
    connect: Callable[..., SSHExecutor], node: SSHDNode, tmp_path: Path
) -> None:
    old = generate_key(tmp_path / "old_host_key")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{node.known_hosts_name} {old}\n")
    node.stand_in("deploy")
    with pytest.raises(HostKeyError) as caught:
        connect(known_hosts=known_hosts, trust_new_keys=True).run("deploy")
    message = str(caught.value)
    assert (
        "CHANGED" in message and fingerprint(old) in message and fingerprint(node.host_public_key) in message
    )
    assert known_hosts.read_text() == f"{node.known_hosts_name} {old}\n"
    assert node.calls() == []


def test_hashed_known_hosts_entry(
    connect: Callable[..., SSHExecutor], node: SSHDNode, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    hashed = paramiko.HostKeys.hash_host(node.known_hosts_name)
    known_hosts.write_text(f"{hashed} {node.host_public_key}\n")
    assert connect(known_hosts=known_hosts).run("true").ok


def test_connection_refused_fails_fast(node: SSHDNode) -> None:
    port = free_port("127.0.0.1")
    executor = ssh_executor(target(node, hostname="127.0.0.1", port=port), options(node))
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=f"refused by 127.0.0.1:{port}") as caught:
        executor.connect()
    assert time.monotonic() - started < 2
    assert str(caught.value).startswith(f"node-{node.address}: ")


def test_wrong_key_is_an_authentication_failure(connect: Callable[..., SSHExecutor], tmp_path: Path) -> None:
    generate_key(tmp_path / "stranger")
    with pytest.raises(ConnectionFailed, match=r"authentication failed"):
        connect(key_file=str(tmp_path / "stranger")).connect()
    with pytest.raises(ConnectionFailed, match=r"not found"):
        connect(key_file=str(tmp_path / "missing")).connect()


def test_unresolvable_host_is_a_connection_failure(connect: Callable[..., SSHExecutor]) -> None:
    with pytest.raises(ConnectionFailed, match=r"cannot connect"):
        connect(hostname="no-such-host.invalid").connect()


def _ssh_config(home: Path, node: SSHDNode, text: str) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(exist_ok=True)
    (ssh / "config").write_text(text)
    shutil.copy(node.known_hosts, ssh / "known_hosts")  # the default known_hosts, under the test's $HOME


def test_ssh_config_fills_what_the_runbook_leaves_open(sshd_nodes: Nodes, home: Path) -> None:
    node = sshd_nodes(2)[1]
    _ssh_config(
        home,
        node,
        (
            f"Host web-alias\n  HostName {node.address}\n  Port {node.port}\n  User {node.user}\n"
            f"  IdentityFile ~/missing_key\n  IdentityFile {node.client_key}\n"
        ),
    )
    resolved = resolve_ssh_target(SSHTarget("web-alias"))
    assert resolved == SSHTarget(
        "web-alias", node.address, user=node.user, port=node.port, key_file=str(node.client_key)
    )
    explicit = resolve_ssh_target(SSHTarget("web-alias", user="deploy", port=2200))
    assert (explicit.hostname, explicit.user, explicit.port) == (node.address, "deploy", 2200)
    with ssh_executor(SSHTarget("web-alias")) as executor:
        result = executor.run('echo "$RUNBOOK_TEST_NODE"')
    assert (result.host, result.stdout) == ("web-alias", f"{node.address}\n")


def test_proxy_jump(sshd_nodes: Nodes, home: Path) -> None:
    jump, behind = sshd_nodes(3)[1:]
    _ssh_config(
        home,
        behind,
        (
            f"Host behind\n  HostName {behind.address}\n  Port {behind.port}\n"
            f"  ProxyJump {jump.user}@{jump.address}:{jump.port}\n"
            f"Host *\n  User {behind.user}\n  IdentityFile {behind.client_key}\n"
        ),
    )
    jumps, arrivals = jump.accepted_connections(), behind.accepted_connections()
    with ssh_executor(SSHTarget("behind")) as executor:
        assert executor.run('echo "$RUNBOOK_TEST_NODE"').stdout == f"{behind.address}\n"
    assert (jump.accepted_connections() - jumps, behind.accepted_connections() - arrivals) == (1, 1)


def test_proxy_command_is_refused(home: Path, node: SSHDNode) -> None:
    _ssh_config(home, node, "Host piped\n  ProxyCommand nc %h %p\n")
    with pytest.raises(ConnectionFailed, match=r"ProxyCommand .* not supported"):
        resolve_ssh_target(SSHTarget("piped"))


def test_close_stops_running_commands(connect: Callable[..., SSHExecutor]) -> None:
    executor = connect()
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(executor.run, "sleep 30")
        time.sleep(0.5)
        executor.close()
        result = running.result(timeout=10)
    assert result.interrupted


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return {int(child) for child in found.split()}


def test_lost_connection_ends_the_command_and_the_next_one_reconnects(
    connect: Callable[..., SSHExecutor], node: SSHDNode
) -> None:
    executor = connect()
    before = _children(node.process.pid)
    executor.connect()
    [ours] = _children(node.process.pid) - before  # the sshd serving this executor's connection
    sleep = unique_sleep()
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(executor.run, sleep)
        assert wait_until(lambda: running_processes(sleep))
        for pid in [*_children(ours), ours]:
            os.kill(pid, signal.SIGKILL)
        result = running.result(timeout=10)
    for line in running_processes(sleep):  # the command outlives its connection, as with ssh(1)
        os.kill(int(line.split()[0]), signal.SIGKILL)
    assert result.exit_code is None and not result.ok and not result.timed_out and not result.interrupted
    assert "lost the connection" in result.stderr
    assert executor.run("true").ok
    assert executor.transport is not None and executor.transport.is_active()


def test_trusted_key_is_appended_after_existing_entries(
    connect: Callable[..., SSHExecutor], node: SSHDNode, tmp_path: Path
) -> None:
    other = f"other.example {generate_key(tmp_path / 'other_key')}"
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(other)  # no final newline
    assert connect(known_hosts=known_hosts, trust_new_keys=True).run("true").ok
    assert known_hosts.read_text().splitlines() == [other, f"{node.known_hosts_name} {node.host_public_key}"]


@pytest.mark.parametrize("sent", ["half the environment", "the environment but no go"])
def test_the_wrapper_starts_nothing_without_the_whole_environment_and_the_go(
    sent: str, tmp_path: Path
) -> None:
    """The engine died (or the connection dropped) before the group was journaled: exit 125, nothing ran."""
    started = tmp_path / "started"
    environment = _environment({"A": "1", "B": "2"})
    stdin = environment[: environment.index(b"\n") + 1] if sent.startswith("half") else environment
    process = subprocess.run(
        ["/bin/sh", "-c", _command()],
        input=_job("marker", "sh", None, f"touch {started}") + stdin,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert process.returncode == 125 and not started.exists(), process.stderr


def test_wrapper_without_setsid_uses_the_session_sshd_gave_it(tmp_path: Path) -> None:
    """No `setsid` (macOS) needed in the group sshd made: the wrapper reports its own pid (here it leads that
    group and runs the script as its child; on macOS, no /proc, it execs in place)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "base64"):
        (tools / tool).symlink_to(shutil.which(tool) or tool)
    command = _command()
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": str(tools)},
        start_new_session=True,  # as sshd does for every session command
    )
    given = _job("marker", "sh", None, 'echo "$GREETING"') + _environment({"GREETING": "hi\nthere"})
    out, err = process.communicate(given + b"\n", timeout=10)  # and go
    assert (process.returncode, out) == (0, b"hi\nthere\n")
    # "marker PGID STARTED": the start time is read by the shell's own `read`, no tool needed for it
    marker, pgid, started = err.split()
    assert (
        err.endswith(b"\n") and (marker, pgid) == (b"marker", str(process.pid).encode()) and started.isdigit()
    )


def test_the_environment_reaches_the_script_byte_for_byte(tmp_path: Path) -> None:
    """Values without a line break go as they are (read and exported by builtins: no `base64` per variable
    and command on the host), the others base64-encoded; both come out exactly as sent."""
    values = {
        "SPACES": " lead and trail ",
        "SIGNS": "a=b==c $HOME `id` $(id) \\n \\\\ 'q' \"qq\" ; | & *",
        "LOOKS_ENCODED": "QUJD=",
        "EMPTY": "",
        "UNICODE": "ünï ☃",
        "TAB": "a\tb",
        "LINES": "one\ntwo\n",
        "CR": "dos\r",
    }
    sent = _environment(values)
    assert b"SPACES= lead and trail \n" in sent and b"LINES " in sent  # raw, and base64 where it must
    script = "; ".join(f'printf "%s\\0" "${name}"' for name in values)
    process = subprocess.run(
        ["/bin/sh", "-c", _command()],
        input=_job("marker", "sh", None, script) + sent + b"\n",  # and the go
        capture_output=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        timeout=30,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.split(b"\0")[:-1] == [value.encode() for value in values.values()]


def test_a_shell_with_a_line_break_is_a_failed_command(connect: Callable[..., SSHExecutor]) -> None:
    """`shell: |` in YAML gives "bash\\n": no such shell, a failed command (127, as locally), nothing started;
    the wrapper reads the shell as one line, so it never gets such a job."""
    result = connect().run("true", shell="bash\n")
    assert result.exit_code == 127 and "no such shell: 'bash\\n'" in result.stderr, result


@pytest.mark.parametrize("lines", [62, 63, 64, 126, 127, 128, 300])
def test_a_long_script_reaches_its_shell_line_for_line(lines: int, tmp_path: Path) -> None:
    """The wrapper joins the script's lines 64 at a time (a shell's appending copies the whole string): on
    every side of a join, every line comes through, in order, blanks and backslashes kept. What sshd runs
    is one line all the same (the line break comes from IFS)."""
    command = _command()
    assert "\n" not in command
    body = [f"  {i} \\ x\t" if i % 7 else "" for i in range(lines)]
    script = "cat <<'END'\n" + "\n".join(body) + "\nEND"
    process = subprocess.run(
        ["/bin/sh", "-c", command],
        input=_job("marker", "sh", None, script) + _environment({}) + b"\n",  # and the go
        capture_output=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        start_new_session=True,  # as sshd does: the wrapper leads the group
        timeout=30,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.decode() == "\n".join(body) + "\n"
