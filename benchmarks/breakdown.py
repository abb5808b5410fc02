"""Where the engine's per-host share goes, piece by piece: node CPU per connection and per channel kind, and
the engine's CPU per thread in a whole run (`invoke bench` measures the whole; this says where it goes).

Node side (one sshd node on loopback, the engine's own SSHExecutor, `--repeat` times each, the node's sshd
CPU read before and after, as `bench.py` reads it):
- a connection (key exchange, authentication, disconnect);
- a bare session (`exec true`: sshd's session child and the login shell), what fabric pays per command;
- the preflight probe (`uname -s` and the program lookup);
- a command under the wrapper (`true`: process group, the go, output kept on the node), what a step pays;
- the close's cleanup of a host's node files (a line on the probe's held session);
- OpenSSH's own `ssh host true`, for reference (the floor's connection and session).

Engine side (`--engine N`): one `runbook run` of the benchmark's rollback on N nodes, in a child process whose
threads add up their CPU (`time.thread_time`) by kind when they end, with the process's total.

Usage: `.venv/bin/python benchmarks/breakdown.py [--repeat 100] [--engine 100]`: the engine of the checkout it is
in. Node CPU is counted in clock ticks per process, so a piece is the difference of two sums: use `--repeat`
200 or more and a few rounds for figures to quote. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]

import bench  # noqa: E402
from sshd import SSHDNode  # noqa: E402

# Runs the CLI with every thread's CPU added up by kind (its name without numbers) as it ends; a daemon
# thread still running at the exit (paramiko's transports, mostly) is counted with what it used so far.
_THREADS = r"""
import collections, json, os, re, sys, threading, time
cpu = collections.defaultdict(float); count = collections.Counter(); lock = threading.Lock()
def kind(thread): return re.sub(r"[\d.]+", "#", thread.name.split("(")[0])
original = threading.Thread.run
def run(self):
    try:
        original(self)
    finally:
        with lock:
            cpu[kind(self)] += time.thread_time(); count[kind(self)] += 1
threading.Thread.run = run
import atexit
def report():
    import resource
    cpu["main"] += time.thread_time(); count["main"] += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["BREAKDOWN_OUT"], "w") as out:
        json.dump({"process": usage.ru_utime + usage.ru_stime,
                   "threads": {k: [cpu[k], count[k]] for k in cpu}}, out)
atexit.register(report)
from engine.cli import main
sys.argv[0] = "runbook"
main()
"""


def _reaped(listener: int, timeout: float = 10.0) -> None:
    """Wait until the listener has no connection child left: a child's CPU (and that of the sessions it
    reaped) is added to the listener's count only once the listener reaps it."""
    children = Path(f"/proc/{listener}/task/{listener}/children")
    deadline = time.monotonic() + timeout
    while children.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.01)


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _minus(a: tuple[float, float], b: tuple[float, float], per: int = 1) -> tuple[float, float]:
    """What `a` cost beyond `b` (node, engine), divided by `per`: `a` did `per` more of something than `b`."""
    return (a[0] - b[0]) / per, (a[1] - b[1]) / per


def per_piece(repeat: int, base: Path) -> dict[str, dict[str, float]]:
    """Milliseconds of CPU, on the node and in the engine (this process, paramiko's threads included), per
    connection, per probe, per close's cleanup and per channel of each kind."""
    with bench.sshd_nodes(base / "sshd", 1) as nodes:
        lab = bench.make_lab(base, nodes)
        saved = dict(os.environ)  # the engine reads HOME (~/.ssh) from here; given back at the end
        os.environ.update({k: v for k, v in lab.env.items() if k != "PYTHONPATH"})
        try:
            return _pieces(repeat, lab, nodes)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _pieces(repeat: int, lab: bench.Lab, nodes: list[SSHDNode]) -> dict[str, dict[str, float]]:
    from engine.executors.ssh import SSHExecutor
    from engine.options import Options, prepare
    from engine.transports import SSHOptions

    _, plan = prepare(Options(str(lab.book), var=tuple(lab.variables), platform="linux"))
    target = plan.remote_hosts()[0].ssh_target()
    (nodes[0].home / ".runbook" / "out").mkdir(parents=True, exist_ok=True)  # as after a first command
    cpu = bench.NodeCPU(nodes)

    def cost(work: Callable[[], object]) -> tuple[float, float]:
        """Node CPU and this process's CPU (ms) of `work`; a session's CPU reaches the listener's count
        once its connection's sshd is reaped, so `work` ends with its connections closed."""
        before, engine = cpu.settled(), _process_cpu()
        work()
        engine = _process_cpu() - engine
        _reaped(nodes[0].process.pid)
        return (cpu.settled() - before) * 1000, engine * 1000

    def hosts(probe: bool = False, files: bool = False) -> tuple[float, float]:
        """Per host, of `repeat` hosts' lives: connect, probe, close (with two commands' files to delete)."""

        def lives() -> None:
            for _ in range(repeat):
                executor = SSHExecutor(target, SSHOptions())
                executor.connect()
                if probe:
                    executor.probe(["docker", "grep", "cut", "xargs"])
                if files:
                    executor._ended.add("1-2", "3-4")
                executor.close()

        node, engine = cost(lives)
        return node / repeat, engine / repeat

    def channels(channel: Callable[[SSHExecutor], object]) -> tuple[float, float]:
        """`repeat` channels on one connection (a connection's own cost included: `_minus` it)."""

        def work() -> None:
            executor = SSHExecutor(target, SSHOptions())
            executor.connect()
            for _ in range(repeat):
                channel(executor)
            executor.close()

        return cost(work)

    def bare(executor: SSHExecutor) -> None:
        transport = executor.transport
        assert transport is not None
        channel = transport.open_session()
        channel.exec_command("true")
        channel.recv_exit_status()
        channel.close()

    def command(executor: SSHExecutor) -> None:
        assert executor.run("true", timeout=30).ok

    connection, probed, cleaned = hosts(), hosts(probe=True), hosts(probe=True, files=True)
    argv = [*bench.ssh_argv(nodes[0], lab.home / ".ssh" / "known_hosts"), "true"]
    openssh = cost(lambda: [subprocess.run(argv, check=True, env=lab.env) for _ in range(repeat)])
    pieces = {
        "connection (kex, auth, disconnect)": connection,
        "preflight probe (its session, held for the kills and the cleanup)": _minus(probed, connection),
        "close's cleanup (a line on the probe's held session)": _minus(cleaned, probed),
        "bare session: exec true": _minus(channels(bare), connection, repeat),
        "command under the wrapper: true": _minus(channels(command), connection, repeat),
        "OpenSSH's `ssh host true` (the floor's connection and session)": _minus(openssh, (0, 0), repeat),
    }
    return {
        "node_cpu_ms": {name: round(spent[0], 2) for name, spent in pieces.items()},
        "engine_cpu_ms": {name: round(spent[1], 2) for name, spent in pieces.items()},
    }


def engine_side(count: int, base: Path) -> dict[str, object]:
    """CPU seconds per kind of thread in one `runbook run` on `count` nodes (after one warm-up run)."""
    with bench.sshd_nodes(base / "sshd-engine", count) as nodes:
        lab = bench.make_lab(base / "engine", nodes)
        out = base / "threads.json"
        argv = [sys.executable, "-c", _THREADS, "run", str(lab.book)]
        argv += [a for v in lab.variables for a in ("--var", v)] + ["--yes", "--confirm-manual"]
        env = {**lab.env, "BREAKDOWN_OUT": str(out)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cpu = bench.NodeCPU(nodes)
        for attempt in range(2):
            before, start = cpu.settled(), time.perf_counter()
            subprocess.run(
                [*argv, "--state-dir", str(lab.work / f"state-{attempt}")],
                env=env,
                cwd=lab.work,
                check=True,
                capture_output=True,
                timeout=bench.RUN_TIMEOUT,
            )
            wall, node = time.perf_counter() - start, cpu.settled() - before
        found = json.loads(out.read_text())
        threads = sorted(found["threads"].items(), key=lambda item: -item[1][0])
        return {
            "nodes": count,
            "wall_s": round(wall, 3),
            "node_cpu_s": round(node, 3),
            "process_cpu_s": round(found["process"], 3),
            "threads": {name: {"cpu_s": round(s, 3), "threads": n} for name, (s, n) in threads},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=100, help="times each node-side piece runs (default 100)"
    )
    parser.add_argument("--engine", type=int, default=0, help="also one whole run on N nodes, CPU per thread")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 1000 or not 0 <= args.engine <= 1000:
        parser.error("--repeat: 1 to 1000; --engine: 0 to 1000 nodes")
    bench.compiled(bench.ROOT)
    with tempfile.TemporaryDirectory(prefix="rb-breakdown-") as tmp:
        report: dict[str, object] = {**per_piece(args.repeat, Path(tmp))}
        if args.engine:
            report["engine"] = engine_side(args.engine, Path(tmp))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
