"""ha-rollback on the cluster files users write, end to end against real sshd nodes, connecting as `rke` would.

Each test writes a cluster file of tests/data/rke/ for the nodes, runs `runbook run runbooks/ha-rollback.yml`
(the command line in this process, `Lab.run_here`; SSH to the nodes is real) as an operator would (HOME with
known_hosts only: no ~/.ssh/config, so every key comes from the cluster file), and checks that the rollback
completed: `set image` once, and each node restarted what RKE runs on it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import SSHDCluster, SSHDNode, generate_key

from runbooks import (
    HA_ROLLBACK,
    Lab,
    Nodes,
    calls,
    cluster_yaml,
    docker_like,
    docker_nodes,
    docker_on,
    inline_key,
    rke_cluster,
    wait_for,
    work_lab,
    write_rollback,
    write_ssh_home,
)

pytestmark = pytest.mark.ssh

CONTROLPLANE = ["kube-apiserver", "kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"]
WORKER = ["kubelet", "kube-proxy"]
PASSPHRASE = "correct horse battery staple 4711"


@pytest.fixture
def nodes(sshd_nodes: Nodes, home: Path) -> list[SSHDNode]:
    """Three nodes with a recording `docker`, trusted through ~/.ssh/known_hosts (and no ~/.ssh/config)."""
    return docker_nodes(sshd_nodes, home)


@pytest.fixture
def lab(tmp_path: Path, home: Path, nodes: list[SSHDNode]) -> Lab:
    return work_lab(tmp_path, home, nodes)


def rollback(lab: Lab, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = lab.run_here(HA_ROLLBACK, *lab.rollback_vars(), "--yes", "--confirm-manual", env=env)
    return done.returncode, done.stdout, done.stderr


def assert_rolled_back(lab: Lab, nodes: list[SSHDNode], code: int, output: str) -> None:
    """Exit 0, `set image` exactly once, and every node restarted the components of its roles."""
    assert code == 0, output
    set_image = [c["argv"] for c in lab.calls("kubectl") if "set" in c["argv"]]
    assert len(set_image) == 1, set_image
    for node in nodes:
        assert calls(node, "docker")[0][:2] == ["docker", "restart"], node.address


def copy_key(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o600)
    return target


def files_containing(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


# -- keys as rke picks them ----------------------------------------------------------------------------------


def test_a_cluster_level_key_and_worker_only_nodes(lab: Lab, nodes: list[SSHDNode]) -> None:
    """cluster-key.yml: one cluster-level key, ports as text, hostname_override/internal_address, empty strings,
    a controlplane+etcd node and two worker-only nodes whose `docker` fails, like docker, on a container they
    do not have. The rollback completes, each node restarting only what RKE runs there."""
    docker_like(nodes[0], [*CONTROLPLANE, "etcd"])
    for worker in nodes[1:]:
        docker_like(worker, WORKER)
    missing = subprocess.run(
        [nodes[1].bin_dir / "docker", "restart", "kubelet", "kube-apiserver"], capture_output=True, text=True
    )
    assert (
        missing.returncode == 1
    )  # the stand-in fails as docker does: the test below could catch a regression
    assert missing.stderr == "Error response from daemon: No such container: kube-apiserver\n"
    for node in nodes:
        node.calls_log.unlink(missing_ok=True)
    write_rollback(lab, rke_cluster("cluster-key.yml", nodes, KEY=str(nodes[0].client_key)))
    code, out, err = rollback(lab)
    assert_rolled_back(lab, nodes, code, out + err)
    assert calls(nodes[0], "docker")[0] == ["docker", "restart", *CONTROLPLANE]
    for worker in nodes[1:]:
        assert calls(worker, "docker")[0] == ["docker", "restart", *WORKER]
        assert all(
            argv[0:2] != ["docker", "restart"] or "kube-apiserver" not in argv
            for argv in calls(worker, "docker")
        )


def test_key_paths_relative_to_the_cluster_file_under_home_and_rkes_default(
    lab: Lab, nodes: list[SSHDNode], home: Path
) -> None:
    """relative-keys.yml: `keys/node_key` (relative to the cluster file's directory, not to where the run
    starts), `~/.ssh/rke_key`, and no key at all (rke's default ~/.ssh/id_rsa)."""
    write_rollback(lab, rke_cluster("relative-keys.yml", nodes))
    client_key = nodes[0].client_key
    copy_key(client_key, lab.rke_dir / "keys/node_key")
    copy_key(client_key, home / ".ssh/rke_key")
    copy_key(client_key, home / ".ssh/id_rsa")
    assert not (lab.root / "keys").exists()  # the run starts in lab.root: a path read from there would fail
    code, out, err = rollback(lab)
    assert_rolled_back(lab, nodes, code, out + err)


def test_a_missing_key_file_stops_at_preflight(lab: Lab, nodes: list[SSHDNode], home: Path) -> None:
    write_rollback(lab, rke_cluster("relative-keys.yml", nodes))
    copy_key(nodes[0].client_key, home / ".ssh/rke_key")
    copy_key(nodes[0].client_key, home / ".ssh/id_rsa")
    code, out, err = rollback(lab)
    assert code == 3, out + err
    assert f"key file {lab.rke_dir}/keys/node_key not found" in out + err
    assert lab.calls() == [] and all(node.calls() == [] for node in nodes)


@pytest.fixture
def agent(tmp_path: Path, sshd_cluster: SSHDCluster, home: Path) -> Iterator[tuple[str, Path]]:
    """A real ssh-agent holding a passphrase-protected key that every node accepts, the passphrase fed to
    ssh-add by an SSH_ASKPASS program: (SSH_AUTH_SOCK, the key file)."""
    key = home / ".ssh/locked_ed25519"
    key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", key], check=True, timeout=30)
    with open(sshd_cluster.authorized_keys, "a") as authorized:
        authorized.write(key.with_name(key.name + ".pub").read_text())
    socket = tmp_path / "agent.sock"
    process = subprocess.Popen(
        ["ssh-agent", "-D", "-a", socket], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(socket.exists, "ssh-agent's socket")
        askpass = tmp_path / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
        askpass.chmod(0o700)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket), "SSH_ASKPASS": str(askpass)}
        env |= {"SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
        added = subprocess.run(
            ["ssh-add", key], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
        assert added.returncode == 0, added.stderr
        askpass.unlink()  # from here on the passphrase exists only in this test
        yield str(socket), key
    finally:
        process.terminate()
        process.wait(10)


def test_agent_only_with_a_passphrase_protected_key(
    lab: Lab, nodes: list[SSHDNode], agent: tuple[str, Path]
) -> None:
    """agent.yml: `ssh_agent_auth: true`; the cluster's ssh_key_path is the locked key itself, which paramiko
    cannot open without its passphrase: only the agent can have logged in."""
    socket, key = agent
    two = nodes[:2]
    write_rollback(lab, rke_cluster("agent.yml", two, KEY=str(key)))
    code, out, err = rollback(lab, env={"SSH_AUTH_SOCK": socket})
    assert_rolled_back(lab, two, code, out + err)
    assert "the SSH agent only" in lab.run_here(HA_ROLLBACK, *lab.rollback_vars(), task="plan").stdout
    for text in (out, err):
        assert PASSPHRASE not in text
    assert files_containing(lab.root, PASSPHRASE) == []

    code, out, err = rollback(lab)  # no agent: refused before anything runs, as rke would fail to log in
    assert code == 3, out + err
    assert "only the SSH agent may be used, but SSH_AUTH_SOCK is not set" in out + err


def test_an_inline_key_appears_nowhere(lab: Lab, nodes: list[SSHDNode]) -> None:
    """inline-key.yml: the key in the cluster file (`ssh_key`, once with a trailing newline and once without),
    a bogus ssh_key_path beside it that rke ignores. Not in any output, the journal, the state dir, or a temp file."""
    two = nodes[:2]
    key = two[0].client_key
    write_rollback(lab, rke_cluster("inline-key.yml", two, INLINE_KEY=inline_key(key)))
    secret = key.read_text().splitlines()[2]  # a line of the key's body
    tmp = lab.root / "tmp"
    tmp.mkdir()
    started = time.time()
    code, out, err = rollback(lab, env={"TMPDIR": str(tmp)})
    assert_rolled_back(lab, two, code, out + err)
    plan = lab.run_here(HA_ROLLBACK, *lab.rollback_vars(), task="plan")
    assert "inline key" in plan.stdout
    for text in (out, err, plan.stdout, plan.stderr):
        assert secret not in text
    assert files_containing(lab.root, secret) == [lab.rke_dir / "rancher-cluster.yml"]
    assert [p for p in Path("/tmp").glob("*") if _written_since(p, started - 1, secret.encode())] == []


def _written_since(path: Path, since: float, needle: bytes) -> bool:
    """A file of /tmp written since `since` that holds `needle`; other processes may remove or lock theirs
    while we look, which is none of ours."""
    try:
        return path.is_file() and path.stat().st_mtime >= since and needle in path.read_bytes()
    except OSError:
        return False


# -- a bastion host ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bastion(sshd_cluster: SSHDCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[SSHDNode, Path]:
    """An sshd on 127.0.0.100 that logs each forwarding (LogLevel DEBUG1) and accepts only its own key."""
    directory = tmp_path_factory.mktemp("bastion")
    key = directory / "bastion_ed25519"
    authorized = directory / "authorized_keys"
    authorized.write_text(generate_key(key) + "\n")
    node = sshd_cluster.extra("127.0.0.100", authorized, log_level="DEBUG1")
    return node, key


def bastion_cluster(nodes: list[SSHDNode], jump: SSHDNode, jump_key: Path) -> str:
    """bastion.yml: the nodes with the cluster key, reached through `jump` with its own user, port and key."""
    return rke_cluster(
        "bastion.yml",
        nodes,
        KEY=str(nodes[0].client_key),
        BASTION=jump.address,
        BASTION_PORT=str(jump.port),
        BASTION_KEY=str(jump_key),
    )


def test_every_node_is_reached_through_the_bastion(
    lab: Lab, nodes: list[SSHDNode], home: Path, bastion: tuple[SSHDNode, Path]
) -> None:
    """bastion.yml: `bastion_host` with its own user, port (as text) and key; the nodes use the cluster key.
    The bastion's own log shows a forwarding to each node."""
    jump, jump_key = bastion
    write_ssh_home(home, [*nodes, jump])
    before = jump.log.read_text()
    write_rollback(lab, bastion_cluster(nodes, jump, jump_key))
    code, out, err = rollback(lab)
    assert_rolled_back(lab, nodes, code, out + err)
    log = jump.log.read_text()[len(before) :]
    for node in nodes:
        assert re.search(
            rf"server_request_direct_tcpip: originator .* target {node.address} port {node.port}\b", log
        ), node.address
    assert (
        f"via {jump.user}@{jump.address}:{jump.port} (key {jump_key})"
        in lab.run_here(HA_ROLLBACK, *lab.rollback_vars(), task="plan").stdout
    )


def test_an_unknown_bastion_host_key_is_refused(
    lab: Lab, nodes: list[SSHDNode], home: Path, bastion: tuple[SSHDNode, Path]
) -> None:
    jump, jump_key = bastion
    write_ssh_home(home, nodes)  # the nodes are known, the bastion is not
    write_rollback(lab, bastion_cluster(nodes, jump, jump_key))
    code, out, err = rollback(lab)
    assert code == 3, out + err
    assert f"unknown host key for [{jump.address}]:{jump.port}" in out + err
    assert lab.calls() == [] and all(node.calls() == [] for node in nodes)


# -- RKE's directory, by version -----------------------------------------------------------------------------


def test_an_rke_v01_directory_without_rkestate_rolls_back(lab: Lab, nodes: list[SSHDNode]) -> None:
    write_rollback(lab, cluster_yaml(nodes), rke_version="v0.1.18", rkestate=False)
    code, out, err = rollback(lab)
    assert_rolled_back(lab, nodes, code, out + err)
    assert lab.calls("rke_linux-amd64", queries=True)[0]["argv"][1:] == ["--version"]


def test_an_rke_v1_directory_without_rkestate_stops_at_preflight(lab: Lab, nodes: list[SSHDNode]) -> None:
    write_rollback(lab, cluster_yaml(nodes), rke_version="v1.4.6", rkestate=False)
    code, out, err = rollback(lab)
    assert code == 3, out + err
    assert "RKE v1.4 needs its state file, missing: rancher-cluster.rkestate" in out + err
    assert [c["argv"][1:] for c in lab.calls(queries=True)] == [["--version"]]  # asked, nothing done
    assert all(node.calls() == [] for node in nodes)


# -- certificates --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certified(sshd_cluster: SSHDCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[SSHDNode, Path]:
    """An sshd on 127.0.0.120 with no authorized key at all: it trusts the user certificates of its CA."""
    directory = tmp_path_factory.mktemp("ca")
    ca = directory / "ca_ed25519"
    generate_key(ca)
    nobody = directory / "authorized_keys"
    nobody.write_text("")
    return sshd_cluster.extra("127.0.0.120", nobody, extra_config=f"TrustedUserCAKeys {ca}.pub\n"), ca


def test_certificates_from_a_path_or_inline(
    lab: Lab, home: Path, tmp_path: Path, certified: tuple[SSHDNode, Path]
) -> None:
    node, ca = certified
    node.reset()
    docker_on([node])
    write_ssh_home(home, [node])
    key = tmp_path / "user_ed25519"
    generate_key(key)
    signing = [
        "ssh-keygen",
        "-q",
        "-s",
        ca,
        "-I",
        "rollback-test",
        "-n",
        node.user,
        "-V",
        "+1h",
        f"{key}.pub",
    ]
    subprocess.run(signing, check=True, timeout=30)
    cert = tmp_path / "certs/node.cert"
    cert.parent.mkdir()
    Path(f"{key}-cert.pub").rename(cert)  # away from where paramiko would find it by itself

    write_rollback(lab, rke_cluster("certificate.yml", [node], KEY=str(key), CERT_PATH=str(cert)))
    code, out, err = rollback(lab)
    assert_rolled_back(lab, [node], code, out + err)

    (lab.rke_dir / "rancher-cluster.yml").write_text(
        rke_cluster("certificate.yml", [node], KEY=str(key), CERT_PATH="")
    )
    code, out, err = rollback(lab)  # the key alone: refused, so the certificate is what let us in above
    assert code == 3, out + err
    assert "authentication failed" in out + err

    inline = rke_cluster(
        "inline-certificate.yml", [node], INLINE_KEY=inline_key(key), CERT=cert.read_text().strip()
    )
    (lab.rke_dir / "rancher-cluster.yml").write_text(inline)
    lab.calls_log.unlink()
    node.reset()
    docker_on([node])
    code, out, err = rollback(lab)
    assert_rolled_back(lab, [node], code, out + err)
