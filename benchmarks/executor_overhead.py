"""Per-command overhead: LocalExecutor.run("true"), SSHExecutor.run("true"), and OpenSSH's own `ssh` with a
ControlMaster (the fastest way the ssh client runs a command), against the same local sshd. And what the
engine's socket (`sshsocket.dial`: Nagle off from the first packet, every read acknowledged at once) saves
against a plain one: a paramiko login, then the first session after it.

Standalone: `python benchmarks/executor_overhead.py [runs]`. Starts its own sshd on 127.0.0.2 through
tests/sshd.py (loopback only) and stops it; every loop is bounded by `runs`.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import paramiko  # noqa: E402
from sshd import SSHDCluster, SSHDNode  # noqa: E402 - after the sys.path line above

from engine.executors import LocalExecutor, ssh_executor  # noqa: E402
from engine.executors.sshsocket import dial as engine_dial  # noqa: E402
from engine.transports import SSHOptions, SSHTarget  # noqa: E402

WARMUP = 3


def measure(name: str, once: Callable[[], object], runs: int) -> None:
    for _ in range(WARMUP):
        once()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p90 = times[int(len(times) * 0.9) - 1]
    print(f"{name:<44} median {statistics.median(times):7.2f} ms   p90 {p90:7.2f} ms   (n={runs})")


def ssh_argv(node: SSHDNode, control: Path, *extra: str) -> list[str]:
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(node.port),
        "-i",
        str(node.client_key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={node.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ControlPath={control}",
        *extra,
        f"{node.user}@{node.address}",
    ]


def login_then_session(node: SSHDNode, dial: Callable[[], socket.socket]) -> tuple[float, float]:
    """Milliseconds of a paramiko login over `dial()`'s socket, then of opening the first session after it."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(node.known_hosts))
    start = time.perf_counter()
    client.connect(
        node.address,
        node.port,
        username=node.user,
        key_filename=str(node.client_key),
        allow_agent=False,
        look_for_keys=False,
        sock=dial(),
    )
    login = time.perf_counter()
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    opened = time.perf_counter()
    channel.exec_command("true")
    channel.recv_exit_status()
    client.close()
    return (login - start) * 1000, (opened - login) * 1000


def compare_sockets(node: SSHDNode, target: SSHTarget, runs: int) -> None:
    """Plain socket against the engine's, interleaved run by run."""
    dials: dict[str, Callable[[], socket.socket]] = {
        "plain socket": lambda: socket.create_connection((node.address, node.port), 10),
        "engine's socket (dial)": lambda: engine_dial(target, SSHOptions()),
    }
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in dials}
    for _ in range(runs):
        for name, dial in dials.items():
            seen[name].append(login_then_session(node, dial))
    for name, pairs in seen.items():
        login = statistics.median(p[0] for p in pairs)
        first = statistics.median(p[1] for p in pairs)
        print(
            f"{'login, ' + name:<44} median {login:7.2f} ms   first session opened {first:7.2f} ms  (n={runs})"
        )


def checked(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        os.environ["HOME"] = str(base)  # nothing from the real ~/.ssh, no agent
        os.environ.pop("SSH_AUTH_SOCK", None)
        cluster = SSHDCluster(base)
        try:
            node = cluster.start(1)[0]
            local = LocalExecutor()
            measure('LocalExecutor.run("true")', lambda: local.run("true"), runs)
            measure("subprocess.run(['sh', '-c', 'true'])", lambda: checked(["sh", "-c", "true"]), runs)
            target = SSHTarget(
                "bench", node.address, user=node.user, port=node.port, key_file=str(node.client_key)
            )
            with ssh_executor(target, SSHOptions(known_hosts=str(node.known_hosts))) as remote:
                start = time.perf_counter()
                remote.connect()
                print(
                    f"{'SSHExecutor.connect() (once per host)':<44} {1000 * (time.perf_counter() - start):7.2f} ms"
                )
                measure('SSHExecutor.run("true")', lambda: remote.run("true"), runs)
            compare_sockets(node, target, max(5, runs // 5))
            control = base / "cm"
            master = ssh_argv(node, control, "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-N", "-f")
            checked(master)
            try:
                measure(
                    "ssh -o ControlPath=... host true (mux)",
                    lambda: checked([*ssh_argv(node, control), "true"]),
                    runs,
                )
            finally:
                subprocess.run(ssh_argv(node, control, "-O", "exit"), capture_output=True, check=False)
            fresh = ssh_argv(node, base / "unused", "-o", "ControlMaster=no")
            measure(
                "ssh host true (new connection each)", lambda: checked([*fresh, "true"]), max(5, runs // 5)
            )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
