"""What `runbook run` costs beyond the commands themselves, locally and over SSH; prints a table.

1. Overhead per step: a runbook of N steps, each `true`, run in-process through `engine.commands.run.main`
   (validation, plan, preflight, journal and output files included), minus N x the bare command, / N —
   on this machine and on one sshd node. The marginal cost (slope between N=1 and N=N) is shown too.
   Bare command: `sh -ec true` through subprocess (local); over SSH both one exec on an open paramiko
   transport (what the engine builds on) and `ssh` through an open ControlMaster.
2. The ha-rollback runbook (stand-ins for rke, docker, kubectl) on 3 and 20 nodes, against an OpenSSH floor:
   the same rendered commands, the local ones through `sh -ec` and the node ones through `ssh` with
   ControlMaster/ControlPersist (masters opened first, in parallel, as the engine's preflight connects),
   hosts in parallel up to the runbook's concurrency like the engine's fan-out. Target: within 1.25x.

Starts its own sshd nodes (tests/sshd.py) on 127.0.0.2, 127.0.0.3, ...; nothing leaves this machine; every
loop is bounded. `--profile` adds a cProfile of the engine's 20-node rollback (top functions by own time).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]  # tests/runbooks.py, not the runbooks/ directory

import paramiko  # noqa: E402
from sshd import SSHDCluster, SSHDNode  # noqa: E402

import runbooks as rb  # noqa: E402
from engine.commands import run as run_command  # noqa: E402
from engine.executors import Transport  # noqa: E402
from engine.options import Options, prepare  # noqa: E402

TARGET_RATIO = 1.25


def median_of(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


# -- the engine, in-process ------------------------------------------------------------------------------


def engine_run(file: Path, variables: Sequence[str], state_dir: Path) -> float:
    """Wall time of one `runbook run FILE --yes --confirm-manual` in this process, its output discarded."""
    options = Options(str(file), var=tuple(variables))
    settings = run_command.RunOptions(yes=True, confirm_manual=True, state_dir=str(state_dir))
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        start = time.perf_counter()
        code = run_command.main(options, settings)
        elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"benchmark run of {file} failed with exit {code}: rerun it by hand to see why")
    return elapsed


def true_steps(count: int, on: str) -> str:
    return "".join(
        f"  - id: s{i}\n    title: Step {i}\n    on: {on}\n    run: 'true'\n" for i in range(count)
    )


def local_runbook(directory: Path, count: int) -> Path:
    text = f'runbook: 1\nname: bench-local-{count}\nversion: "1"\ntitle: Bench\nsteps:\n{true_steps(count, "local")}'
    return rb.write_runbook(directory, text, f"local-{count}.yml")


def ssh_runbook(directory: Path, count: int) -> Path:
    return rb.write_runbook(
        directory, rb.nodes_runbook(f"bench-ssh-{count}", true_steps(count, "nodes")), f"ssh-{count}.yml"
    )


# -- bare commands ---------------------------------------------------------------------------------------


def bare_local() -> float:
    start = time.perf_counter()
    subprocess.run(["sh", "-ec", "true"], stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - start


def bare_paramiko(transport: paramiko.Transport) -> float:
    start = time.perf_counter()
    channel = transport.open_session()
    channel.exec_command("sh -ec true")
    channel.shutdown_write()
    while channel.recv(65536) or channel.recv_stderr(65536):
        pass
    if channel.recv_exit_status() != 0:
        raise SystemExit("bare paramiko command failed")
    channel.close()
    return time.perf_counter() - start


def paramiko_transport(node: SSHDNode, known_hosts: Path) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.connect(
        node.address,
        node.port,
        username=node.user,
        key_filename=str(node.client_key),
        allow_agent=False,
        look_for_keys=False,
    )
    transport = client.get_transport()
    assert transport is not None
    if isinstance(transport.sock, socket.socket):
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the engine does
    return client


class OpenSSH:
    """`ssh` with one ControlMaster per node (sockets in a short directory: a unix path holds 108 bytes)."""

    def __init__(self, known_hosts: Path, control_dir: Path) -> None:
        self.known_hosts, self.control_dir = known_hosts, control_dir

    def argv(self, node: SSHDNode, *command: str) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(node.client_key),
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.control_dir}/%C",
            "-o",
            "ControlPersist=60",
            "-p",
            str(node.port),
            "-l",
            node.user,
            node.address,
            *command,
        ]

    def run(self, node: SSHDNode, script: str) -> None:
        subprocess.run(
            self.argv(node, "sh -ec " + shlex.quote(script)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=120,
        )

    def bare(self, node: SSHDNode) -> float:
        start = time.perf_counter()
        self.run(node, "true")
        return time.perf_counter() - start

    def close(self, nodes: Sequence[SSHDNode]) -> None:
        for node in nodes:
            subprocess.run(
                [*self.argv(node)[:-1], "-O", "exit", node.address], capture_output=True, timeout=30
            )


# -- part 1: overhead per step ---------------------------------------------------------------------------


def per_step(work: Path, node: SSHDNode, ssh: OpenSSH, steps: int, runs: int) -> list[tuple[str, str]]:
    """Engine runs of N steps and of 1 step, interleaved with bare commands so all see the same load."""
    cluster = work / "one-node.yml"
    cluster.write_text(rb.cluster_yaml([node]))
    state = work / "state-steps"
    client = paramiko_transport(node, work / "home" / ".ssh" / "known_hosts")
    transport = client.get_transport()
    assert transport is not None
    ssh.run(node, "true")  # opens the master
    bare_kinds: dict[str, Callable[[], float]] = {
        "local": bare_local,
        "ssh (paramiko exec)": lambda: bare_paramiko(transport),
        "ssh (ControlMaster)": lambda: ssh.bare(node),
    }
    books = {
        "local": (local_runbook(work, steps), local_runbook(work, 1), []),
        "ssh": (ssh_runbook(work, steps), ssh_runbook(work, 1), [f"cluster={cluster}"]),
    }
    for many, _, variables in books.values():
        engine_run(many, variables, state)  # warm-up: imports, first connection
    walls: dict[str, list[float]] = {key: [] for key in ("local-many", "local-one", "ssh-many", "ssh-one")}
    bare: dict[str, list[float]] = {name: [] for name in bare_kinds}
    for _ in range(runs):
        for kind, (many, one, variables) in books.items():
            walls[f"{kind}-many"].append(engine_run(many, variables, state))
            walls[f"{kind}-one"].append(engine_run(one, variables, state))
        for name, measure in bare_kinds.items():
            bare[name].append(median_of(measure, 10))
    client.close()
    rows = []
    median = {name: statistics.median(values) for name, values in bare.items()}
    rows += [(f"bare command: {name}", f"{seconds * 1000:.2f} ms") for name, seconds in median.items()]
    for kind in books:
        wall_many, wall_one = (statistics.median(walls[f"{kind}-{n}"]) for n in ("many", "one"))
        rows.append((f"{kind}: engine wall, {steps} steps of `true`", f"{wall_many * 1000:.0f} ms"))
        rows.append((f"{kind}: engine wall, 1 step", f"{wall_one * 1000:.0f} ms"))
        marginal = (wall_many - wall_one) / (steps - 1)
        for name, seconds in median.items():
            if name.startswith(kind):
                overhead = (wall_many - steps * seconds) / steps
                rows.append(
                    (
                        f"{kind}: overhead per step vs {name} (wall - {steps} x bare) / {steps}",
                        f"{overhead * 1000:.2f} ms",
                    )
                )
                rows.append(
                    (f"{kind}: marginal overhead per step vs {name}", f"{(marginal - seconds) * 1000:.2f} ms")
                )
    return rows


# -- part 2: ha-rollback against the OpenSSH floor -------------------------------------------------------


def rendered(lab: rb.Lab) -> tuple[list[tuple[str, str | None]], str, list[tuple[str, str | None]], int]:
    """The rollback's commands as the engine renders them: local ones before and after the node step."""
    options = Options(str(rb.HA_ROLLBACK), var=(*rb.HA_VARS, f"rke_dir={lab.rke_dir}"))
    _, plan = prepare(options)
    before: list[tuple[str, str | None]] = []
    after: list[tuple[str, str | None]] = []
    node_script, concurrency = "", 1
    for step in plan.steps:
        if not step.hosts:
            continue  # the manual step
        variant = step.hosts[0].variant("linux")
        assert variant is not None
        if step.hosts[0].host.transport is Transport.LOCAL:
            (after if node_script else before).append((variant.script, step.hosts[0].cwd))
        else:
            node_script, concurrency = variant.script, step.concurrency
    return before, node_script, after, concurrency


def floor_run(lab: rb.Lab, nodes: Sequence[SSHDNode], ssh: OpenSSH) -> tuple[float, float]:
    """(wall time with the masters' opening, without it) of the same commands through OpenSSH."""
    before, node_script, after, concurrency = rendered(lab)
    env = {**os.environ, "PATH": f"{lab.bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def local(script: str, cwd: str | None) -> None:
        subprocess.run(
            ["sh", "-ec", script], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(min(16, len(nodes))) as pool:
        list(pool.map(lambda n: ssh.run(n, "true"), nodes))
    connected = time.perf_counter()
    for script, cwd in before:
        local(script, cwd)
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda n: ssh.run(n, node_script), nodes))
    for script, cwd in after:
        local(script, cwd)
    end = time.perf_counter()
    ssh.close(nodes)
    return end - start, end - connected


def rollback(
    work: Path, nodes: Sequence[SSHDNode], ssh: OpenSSH, runs: int, profile: bool
) -> list[tuple[str, str]]:
    lab = rb.Lab(work / f"lab-{len(nodes)}", work / "home")
    rb.write_rollback(lab, rb.cluster_yaml(nodes))
    os.environ["PATH"] = f"{lab.bin_dir}{os.pathsep}{os.environ['PATH']}"
    variables = [*rb.HA_VARS, f"rke_dir={lab.rke_dir}"]
    state = work / f"state-{len(nodes)}"
    engine_run(rb.HA_ROLLBACK, variables, state)  # warm-up
    engines, floors = [], []
    for _ in range(runs):  # interleaved, so both see the same load on the machine
        engines.append(engine_run(rb.HA_ROLLBACK, variables, state))
        floors.append(floor_run(lab, nodes, ssh))
    engine = statistics.median(engines)
    with_connect = statistics.median(f[0] for f in floors)
    steps_only = statistics.median(f[1] for f in floors)
    ratio = engine / with_connect
    verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
    rows = [
        (f"ha-rollback, {len(nodes)} nodes: engine wall", f"{engine * 1000:.0f} ms"),
        (
            f"ha-rollback, {len(nodes)} nodes: OpenSSH floor (masters opened, then the commands)",
            f"{with_connect * 1000:.0f} ms",
        ),
        (
            f"ha-rollback, {len(nodes)} nodes: OpenSSH floor, commands only (masters already open)",
            f"{steps_only * 1000:.0f} ms",
        ),
        (
            f"ha-rollback, {len(nodes)} nodes: engine / floor (target <= {TARGET_RATIO})",
            f"{ratio:.2f}x {verdict}",
        ),
    ]
    rows += phases(state, len(nodes))
    if profile:
        print(f"\ncProfile of the engine's ha-rollback on {len(nodes)} nodes, every thread, by own time:")
        print(profiled(lambda: engine_run(rb.HA_ROLLBACK, variables, state)))
    return rows


def phases(state: Path, count: int) -> list[tuple[str, str]]:
    """Where the wall time of the last run in `state` went, from its journal's timestamps (ms resolution)."""
    [*_, last] = sorted(state.glob("runs/*/journal.jsonl"), key=lambda p: p.stat().st_mtime)
    records = [json.loads(line) for line in last.read_text().splitlines() if line]
    at = [(r, datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()) for r in records]
    start, end = at[0][1], at[-1][1]
    first_step = next(t for r, t in at if r["type"] == "step-start")
    node = [t for r, t in at if r.get("step") == "restart-components"]
    fan_out = max(node) - min(node)
    return [
        (
            f"  engine, {count} nodes: journal opened -> first step (warnings, connect, preflight)",
            f"{(first_step - start) * 1000:.0f} ms",
        ),
        (f"  engine, {count} nodes: restart-components on every node", f"{fan_out * 1000:.0f} ms"),
        (
            f"  engine, {count} nodes: first step -> run end, other steps",
            f"{(end - first_step - fan_out) * 1000:.0f} ms",
        ),
    ]


def profiled(function: Callable[[], object], top: int = 30) -> str:
    """cProfile of `function` in this thread and every thread it starts, merged (by own time)."""
    profilers = [cProfile.Profile()]

    def in_new_thread(*_: object) -> None:  # threading's profile hook: hand over to a profiler of its own
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(in_new_thread)
    profilers[0].enable()
    try:
        function()
    finally:
        profilers[0].disable()
        threading.setprofile(None)
    text = io.StringIO()
    stats = pstats.Stats(profilers[0], stream=text)
    for profiler in profilers[1:]:
        stats.add(profiler)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--steps", type=int, default=50, help="steps of the per-step runbooks (default 50)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 20], help="rollback sizes (default 3 20)")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's largest rollback")
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="run-overhead-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)
        os.environ.pop("SSH_AUTH_SOCK", None)
        (work / "sshd").mkdir()
        cluster = SSHDCluster(work / "sshd")
        control = Path(tempfile.mkdtemp(prefix="rb-cm-", dir="/tmp"))
        try:
            nodes = cluster.start(max(args.nodes))
            known_hosts = rb.write_ssh_home(home, nodes)
            rb.docker_on(nodes)
            ssh = OpenSSH(known_hosts, control)
            rows = per_step(work, nodes[0], ssh, args.steps, runs)
            for count in args.nodes:
                rows += rollback(work, nodes[:count], ssh, runs, args.profile and count == max(args.nodes))
            ssh.close(nodes)
        finally:
            cluster.stop()
            subprocess.run(["rm", "-rf", str(control)], check=False)
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<80} {'value':>14}")
    for name, value in rows:
        print(f"{name:<80} {value:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
