"""SSH failures are reported by their cause, in one line, never as a paramiko traceback: a peer that sends no
banner (or garbage), wrong keys (naming the keys tried), a login that exits at once, a host key changed while
the run goes on; and `Include` in ~/.ssh/config is followed the way OpenSSH follows it.

Real sshd nodes, and real sockets on 127.0.0.1 for the peers that are not SSH servers.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sshd import SSHDCluster, SSHDNode, generate_key

from engine.errors import ConnectionFailed, PreflightFailed
from engine.executors import resolve_ssh_target, ssh_executor
from engine.transports import SSHOptions, SSHTarget
from runbooks import Nodes, journal, nodes_runbook, operator_lab, write_ssh_home

pytestmark = pytest.mark.ssh


class Peer:
    """A TCP server on 127.0.0.1 that is not an SSH server: it says `greeting` (if any) to each client,
    then keeps the connection open without a word, or closes it (`close`)."""

    def __init__(self, greeting: bytes = b"", close: bool = False) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.greeting, self.close_after, self.clients = greeting, close, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.clients.append(client)
            self.answer(client)

    def answer(self, client: socket.socket) -> None:
        if self.greeting:
            client.sendall(self.greeting)
        if self.close_after:
            client.close()

    def stop(self) -> None:
        self.server.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    made = Peer()
    yield made
    made.stop()


class Hanging(Peer):
    """A TCP server on 127.0.0.1 that reads each client's first words (its banner), then hangs up: with a
    reset (RST: SO_LINGER 0, then close) or a plain close. Reading first keeps the client's banner from
    meeting a closed socket, which would turn a plain close into a reset."""

    def __init__(self, reset: bool) -> None:
        self.reset = reset
        super().__init__()

    def answer(self, client: socket.socket) -> None:
        client.recv(256)
        if self.reset:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()


def test_a_silent_a_banner_only_and_a_resetting_peer_are_each_named_under_the_default_timeouts(
    home: Path,
) -> None:
    """With the timeouts a user gets (connect 10 s, banner 15 s), all four peers at once (15 s in all): the
    silent one used to be reported at 10 s as "authentication failed … too many keys offered?" (paramiko's
    wait for the handshake ended before the banner's), as was the one that hangs after its banner; a reset
    escaped as a bare EOFError."""
    peers = {
        "silent": Peer(),
        "banner-only": Peer(b"SSH-2.0-OpenSSH_9.6\r\n"),
        "resetting": Hanging(reset=True),
        "closing": Hanging(reset=False),
    }
    errors: dict[str, BaseException] = {}

    def connect(name: str, peer: Peer) -> None:
        try:
            ssh_executor(SSHTarget(name, "127.0.0.1", user="me", port=peer.port), SSHOptions()).connect()
        except BaseException as error:
            errors[name] = error

    threads = [threading.Thread(target=connect, args=pair) for pair in peers.items()]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for peer in peers.values():
            peer.stop()
    at = {name: f"127.0.0.1:{peer.port}" for name, peer in peers.items()}
    assert {name: type(error) for name, error in errors.items()} == dict.fromkeys(peers, ConnectionFailed)
    assert {name: str(error) for name, error in errors.items()} == {
        "silent": f"silent: {at['silent']} accepted the connection but sent no SSH banner within 15s (nothing, "
        "or something that is not SSH): not an SSH server there, or one too busy to answer (MaxStartups)",
        "banner-only": f"banner-only: {at['banner-only']} sent its SSH banner (SSH-2.0-OpenSSH_9.6) but no key "
        "exchange followed within 10s: a server stuck or overloaded",
        "resetting": f"resetting: connection reset by {at['resetting']} before any SSH banner (a firewall "
        "rejecting the connection, or a server refusing it: sshd's MaxStartups, TCP wrappers)",
        "closing": f"closing: {at['closing']} closed the connection without sending an SSH banner: not an SSH "
        "server there, or one refusing connections (sshd's MaxStartups, TCP wrappers)",
    }


def test_the_banner_and_key_exchange_waits_follow_the_options(home: Path) -> None:
    """A banner wait longer than the connection's (the defaults' order, shortened): each named with its own."""
    silent, hanging = Peer(), Peer(b"SSH-2.0-OpenSSH_9.6\r\n")
    options = SSHOptions(connect_timeout=1, banner_timeout=2)
    try:
        for peer in (silent, hanging):
            with pytest.raises(ConnectionFailed) as caught:
                ssh_executor(SSHTarget("n", "127.0.0.1", user="me", port=peer.port), options).connect()
            assert (
                "no SSH banner within 2s" if peer is silent else "no key exchange followed within 1s"
            ) in str(caught.value)
    finally:
        silent.stop()
        hanging.stop()


def test_a_garbage_banner_is_one_line_and_no_traceback(tmp_path: Path, home: Path) -> None:
    """paramiko logs the failure with a traceback; without a handler Python printed it raw on stderr."""
    garbage = Peer(b"HTTP/1.1 400 Bad Request\r\nServer: not-ssh\r\n\r\n" * 40, close=True)
    try:
        lab = operator_lab(tmp_path / "lab", home, [])
        lab.write(
            'runbook: 1\nname: garbage\nversion: "1"\ntitle: Garbage\ntargets:\n  nodes:\n    ssh:\n'
            f"      hosts: [me@127.0.0.1:{garbage.port}]\nsteps:\n  - id: s\n    title: S\n    on: nodes\n"
            "    run: 'true'\n"
        )
        result = lab.run(lab.book, "--yes")
    finally:
        garbage.stop()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "paramiko" not in result.stderr
    assert f"127.0.0.1:{garbage.port}" in result.stdout + result.stderr


def test_wrong_keys_are_named_in_the_authentication_failure(
    sshd_nodes: Nodes, tmp_path: Path, home: Path
) -> None:
    [node] = sshd_nodes(1)
    stranger = tmp_path / "stranger"
    generate_key(stranger)
    target = SSHTarget("n", node.address, user=node.user, port=node.port, key_file=str(stranger))
    with pytest.raises(ConnectionFailed) as caught:
        ssh_executor(target, SSHOptions(known_hosts=str(node.known_hosts))).connect()
    assert (
        f"authentication failed for {node.user}@{node.address}:{node.port}; keys tried: key {stranger}."
        in str(caught.value)
    )
    # No key given: the default key files are tried, and named.
    (home / ".ssh").mkdir()
    generate_key(home / ".ssh" / "id_ed25519")
    defaults = SSHTarget("n", node.address, user=node.user, port=node.port)
    with pytest.raises(
        ConnectionFailed, match=r"keys tried: the SSH agent, default keys \(.*/\.ssh/id_ed25519\)\. Give"
    ):
        ssh_executor(defaults, SSHOptions(known_hosts=str(node.known_hosts))).connect()


@pytest.fixture
def forced_exit_key(sshd_nodes: Nodes, tmp_path: Path) -> Iterator[tuple[SSHDNode, Path]]:
    """A client key that sshd accepts with `command="exit 255"`: the login ends before any command runs,
    as with a login shell or profile that exits."""
    [node] = sshd_nodes(1)
    key = tmp_path / "exits"
    authorized = node.root.parent / "authorized_keys"
    before = authorized.read_text()
    authorized.write_text(before + f'command="exit 255" {generate_key(key)}\n')
    yield node, key
    authorized.write_text(before)


def test_a_login_that_exits_at_once_is_explained(forced_exit_key: tuple[SSHDNode, Path], home: Path) -> None:
    node, key = forced_exit_key
    target = SSHTarget("n", node.address, user=node.user, port=node.port, key_file=str(key))
    executor = ssh_executor(target, SSHOptions(known_hosts=str(node.known_hosts)))
    try:
        with pytest.raises(PreflightFailed) as caught:
            executor.platform()
    finally:
        executor.close()
    assert str(caught.value) == (
        "n: `uname -s` failed (exit 255): no output at all; the login shell of the account (or a "
        "ForceCommand) may exit before running any command: check its shell and its profile on the host"
    )


def test_a_login_that_exits_at_once_fails_the_probe_and_is_explained(
    forced_exit_key: tuple[SSHDNode, Path], home: Path
) -> None:
    node, key = forced_exit_key
    target = SSHTarget("n", node.address, user=node.user, port=node.port, key_file=str(key))
    executor = ssh_executor(target, SSHOptions(known_hosts=str(node.known_hosts)))
    try:
        with pytest.raises(PreflightFailed) as caught:
            executor.probe(["docker"])
    finally:
        executor.close()
    assert str(caught.value) == (
        "n: `uname -s` (and `command -v`) failed (exit 255): no output at all; the login shell of the "
        "account (or a ForceCommand) may exit before running any command: check its shell and its profile "
        "on the host"
    )


CHANGE_KEY = """\
import os, signal, sys
known_hosts, master = sys.argv[1], int(sys.argv[2])
with open(known_hosts) as f:
    lines = f.read().splitlines()
with open(known_hosts, "w") as f:
    f.write("\\n".join(line.split()[0] + " " + sys.argv[3] for line in lines) + "\\n")
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            os.kill(int(pid), signal.SIGKILL)  # the node's per-connection sshd: our idle connection drops
"""


def test_a_host_key_changed_mid_run_fails_the_step_exit_1_journal_consistent(
    sshd_nodes: Nodes, tmp_path: Path, home: Path
) -> None:
    """Before: exit 3 ("preflight failed, nothing ran") though a step ran, and a step-start without an end."""
    [node] = sshd_nodes(1)
    lab = operator_lab(tmp_path / "lab", home, [node])
    (lab.root / "change_key.py").write_text(CHANGE_KEY)
    other = generate_key(tmp_path / "other-host-key")
    steps = f"""\
  - id: first
    title: Runs on the node
    on: nodes
    run: 'true'
  - id: swap
    title: The node's key changes and the connection drops
    run: python3 change_key.py {lab.home}/.ssh/known_hosts {node.process.pid} '{other}'
  - id: second
    title: Reconnects and meets the changed key
    on: nodes
    run: touch "$HOME/second"
"""
    lab.write(nodes_runbook("keychange", steps, [node]))
    result = lab.run(lab.book, "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    records = journal(lab.state)
    starts = [(r["step"], r["host"]) for r in records if r["type"] == "step-start"]
    ends = {(r["step"], r["host"]): r for r in records if r["type"] == "step-end"}
    assert sorted(starts) == sorted(ends)  # every start has its end
    second = ends[("second", node.address)]
    assert second["status"] == "failed" and "has CHANGED" in second["reason"]
    assert second["reason"].startswith("not started: ")
    assert not (node.home / "second").exists()
    assert "Traceback" not in result.stderr


def test_include_is_followed_with_globs_and_relative_paths(sshd_nodes: Nodes, home: Path) -> None:
    [node] = sshd_nodes(1)
    write_ssh_home(home, [node], config="Include config.d/*.conf\nHost *\n  User nobody-else\n")
    (home / ".ssh" / "config.d").mkdir()
    (home / ".ssh" / "config.d" / "10-web.conf").write_text(
        f"Host web\n  HostName {node.address}\n  Port {node.port}\n  Include ~/.ssh/keys.conf\n"
    )
    (home / ".ssh" / "keys.conf").write_text(f"IdentityFile {node.client_key}\nUser {node.user}\n")
    resolved = resolve_ssh_target(SSHTarget("web"))
    assert resolved == SSHTarget(
        "web", node.address, user=node.user, port=node.port, key_file=str(node.client_key)
    )
    with ssh_executor(SSHTarget("web")) as executor:
        assert executor.run('echo "$RUNBOOK_TEST_NODE"').stdout.strip() == node.address
    assert resolve_ssh_target(SSHTarget("other")).user == "nobody-else"  # the block after the Include


def test_an_include_loop_is_refused_clearly(home: Path) -> None:
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "config").write_text("Include config\n")
    with pytest.raises(ConnectionFailed, match=r"cannot read .*config: Include nests deeper than 16"):
        resolve_ssh_target(SSHTarget("web"))


@pytest.fixture
def legacy_rsa_node(sshd_cluster: SSHDCluster) -> tuple[SSHDNode, Path]:
    """An sshd that accepts only SHA-1 `ssh-rsa` signatures (`PubkeyAcceptedAlgorithms ssh-rsa`, as an old
    sshd does) and one RSA client key; started once per session on its own address."""
    key = sshd_cluster.base / "legacy_rsa"
    authorized = sshd_cluster.base / "legacy_rsa_authorized_keys"
    if not key.exists():
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
        )
        key.chmod(0o600)
        public = private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        authorized.write_bytes(public + b"\n")
    node = sshd_cluster.extra("127.0.0.130", authorized, extra_config="PubkeyAcceptedAlgorithms ssh-rsa\n")
    return node, key


def test_an_sshd_that_accepts_only_sha1_ssh_rsa_is_named_and_can_be_allowed(
    legacy_rsa_node: tuple[SSHDNode, Path], tmp_path: Path, home: Path
) -> None:
    """Before: "SSH failed with …: Invalid key". Now the cause, found by asking the server (signing nothing),
    and the OpenSSH way to allow it for that host only."""
    node, key = legacy_rsa_node
    write_ssh_home(home, [node])
    host = f"Host legacy\n  HostName {node.address}\n  Port {node.port}\n  User {node.user}\n  IdentityFile {key}\n"
    config = home / ".ssh" / "config"
    config.write_text(host)
    options = SSHOptions(known_hosts=str(home / ".ssh" / "known_hosts"))
    with pytest.raises(ConnectionFailed) as caught:
        ssh_executor(SSHTarget("legacy"), options).connect()
    said = str(caught.value)
    assert "accepts this RSA key only with the legacy SHA-1 `ssh-rsa` signature" in said, said
    assert "add `PubkeyAcceptedAlgorithms +ssh-rsa` under its Host in ~/.ssh/config" in said
    assert "Invalid key" not in said

    # An RSA key the server does not know is not blamed on SHA-1: the usual failure, naming the key.
    stranger = tmp_path / "stranger_rsa"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    stranger.chmod(0o600)
    with pytest.raises(ConnectionFailed) as caught:
        ssh_executor(SSHTarget("legacy", key_file=str(stranger)), options).connect()
    assert "ssh-rsa" not in str(caught.value) and f"keys tried: key {stranger}" in str(caught.value)

    # Allowed for this host, the way OpenSSH users say it: the command runs.
    config.write_text(host + "  PubkeyAcceptedAlgorithms +ssh-rsa\n")
    with ssh_executor(SSHTarget("legacy"), options) as executor:
        result = executor.run("echo signed with $((1 + 1)) hashes")
    assert result.ok and result.stdout == "signed with 2 hashes\n", result
    assert "Accepted publickey" in node.log.read_text()
