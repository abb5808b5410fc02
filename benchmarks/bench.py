"""`invoke bench`: what the operator feels — whole processes, from Enter to the prompt coming back.

For each N (sshd nodes on 127.0.0.2 …, started by tests/sshd.py) the same work is done four ways, the
commands alternated run by run so machine noise hits all of them alike:

- engine: `runbook run` of a copy of runbooks/ha-rollback.yml whose node target has `concurrency: N`
  (so every tool below has the same parallelism), `--yes --confirm-manual`, its own state directory;
- floor: a shell script this benchmark writes: the same rendered local commands through `sh -ec`, and one
  plain `ssh` per node, all at once, running the same node block (no ControlMaster; curve25519, which
  the nodes' sshd offers, so OpenSSH 9.2's costlier default kex is not what is measured);
- fabric: a script using fabric's `ThreadingGroup` for the node block and invoke's `run` for the local
  commands (fabric from the benchmark venv, made on first use); `fabric+probe`: the same script first
  sending every node the engine's preflight command (platform and program lookup), which the engine must
  send before any step, so the two are also compared doing the same work;
- imports: `python -c` importing what any engine on the required libraries must import before its first
  step (jinja2, jsonschema, yaml, paramiko): the floor plus that is the least such an engine can take;
- ansible: `ansible-playbook` with three plays (local, nodes with `-f N`, local), gathering explicit,
  ansible's own ssh settings (ControlPersist shortened so masters do not outlive the run); skipped past
  N = 20 unless `--ansible-max` says otherwise.

The stand-ins sleep a known 0.55 s in total (`rke` 0.15 s twice, `kubectl` 0.05 s twice, `docker
restart` 0.05 s three times per node), so the floor's lower bound is known. Each process's peak RSS comes
from `wait4`. Start-up: `runbook validate` and `runbook plan` against `python -c 'import jinja2,
jsonschema, yaml'`, with the engine's bytecode and from an uncompiled copy of the source under
PYTHONDONTWRITEBYTECODE=1. Results go to benchmarks/results/ as Markdown and JSON. Loopback only; every
loop is bounded and every process has a timeout.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# tests/sshd.py and tests/runbooks.py (not the runbooks/ directory), generate.py beside this file
sys.path[:0] = [str(ROOT / "tests"), str(ROOT), str(Path(__file__).resolve().parent)]

from generate import write_large_runbook  # noqa: E402
from pgserver import PgServer, cluster_directory, migrate_as_superuser  # noqa: E402
from sshd import SSHDCluster, SSHDNode  # noqa: E402

import runbooks as rb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BENCH_VENV = ROOT / ".bench-venv"
RUN_TIMEOUT = 600.0
TOOLS = ("engine", "floor", "fabric", "ansible")

RKE_SLEEP, KUBECTL_SLEEP, DOCKER_SLEEP = 0.15, 0.05, 0.05
# What any Python engine built on the required libraries imports before its first step can run: jinja2,
# jsonschema, yaml and paramiko. paramiko imports invoke only for an ssh config's `Match exec`, and the engine
# defers that (engine/executors/factory.py), so this does too. The floor plus this is the least such an
# engine can take: it must import them all before its first step, and the floor's work comes after.
UNAVOIDABLE_IMPORTS = "import sys; sys.modules['invoke'] = None; import jinja2, jsonschema, yaml, paramiko"
STAND_INS_TOTAL = 2 * RKE_SLEEP + 2 * KUBECTL_SLEEP + 3 * DOCKER_SLEEP

# Shell stand-ins (no Python start-up in what is measured): they sleep, and print what the real tools would.
_RKE = f"""#!/bin/sh
case "$1" in
  --version) echo 'rke version v0.2.8' ;;
  *) sleep {RKE_SLEEP}; echo 'INFO[0000] Running RKE version: v0.2.8 (stand-in)' ;;
esac
"""
_KUBECTL = f"#!/bin/sh\nsleep {KUBECTL_SLEEP}\necho 'deployment.extensions/cattle image updated'\n"
_DOCKER = f"""#!/bin/sh
case "$1" in
  ps) printf '%s\\n' {shlex.quote(rb.DOCKER_PS.splitlines()[0])} {shlex.quote(rb.DOCKER_PS.splitlines()[1])} ;;
  restart) sleep {DOCKER_SLEEP}; shift; printf '%s\\n' "$@" ;;
esac
"""

_FABRIC = """\
import json, shlex, sys
from fabric import ThreadingGroup
from invoke import run

spec = json.load(open(sys.argv[1]))
def local(script, cwd):
    run(f"cd {shlex.quote(cwd)} && sh -ec {shlex.quote(script)}", hide=True, in_stream=False)
for script, cwd in spec["before"]:
    local(script, cwd)
group = ThreadingGroup(*spec["hosts"], connect_kwargs={"key_filename": spec["key"], "look_for_keys": False,
                                                       "allow_agent": False})
if len(sys.argv) > 2 and sys.argv[2] == "--probe":  # the engine's preflight round trip, on every host first
    group.run(spec["probe"], hide=True, in_stream=False)
group.run("sh -ec " + shlex.quote(spec["node"]), hide=True, in_stream=False)
group.close()
for script, cwd in spec["after"]:
    local(script, cwd)
"""


# -- measuring one process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mib: float
    cpu: float  # user + system seconds of the process and the children it waited for
    node_cpu: float = 0.0  # what the nodes' sshds (and all they started) spent meanwhile


class NodeCPU:
    """CPU seconds the nodes' sshds spent: each listener's own and its reaped children's (the per-connection
    sshd, and through it the sessions' shells and stand-ins). On this machine the nodes share the cores with
    the tool measured, so work a tool makes the nodes do costs it wall time too."""

    SETTLE = 2.0  # seconds at most for the last connections' sshds to exit and be reaped after the tool

    def __init__(self, nodes: Sequence[SSHDNode]) -> None:
        self.stats = [Path(f"/proc/{node.process.pid}/stat") for node in nodes]
        self.tick = os.sysconf("SC_CLK_TCK")

    def now(self) -> float:
        total = 0
        for stat in self.stats:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return total / self.tick

    def settled(self) -> float:
        """The reading once it stops moving (two equal readings 50 ms apart), or after SETTLE seconds."""
        last, deadline = self.now(), time.perf_counter() + self.SETTLE
        while time.perf_counter() < deadline:
            time.sleep(0.05)
            if (reading := self.now()) == last:
                break
            last = reading
        return last


def measure(
    argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path, nodes: NodeCPU | None = None
) -> Sample:
    """Wall time and peak RSS (largest process of its tree that was waited for) of one command to its end;
    with `nodes`, what the nodes spent for it."""
    node_start = nodes.settled() if nodes else 0.0
    with open(log, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = start + RUN_TIMEOUT
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise SystemExit(f"{argv[0]} did not finish in {RUN_TIMEOUT:.0f}s; log: {log}")
            time.sleep(0.002)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"{' '.join(argv[:3])} … exited {process.returncode}:\n{tail}")
    node_cpu = nodes.settled() - node_start if nodes else 0.0
    return Sample(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, node_cpu)


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        seconds = [s.seconds for s in self.samples]
        return min(seconds), max(seconds)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def node_cpu(self) -> float:
        return statistics.median(s.node_cpu for s in self.samples)

    @property
    def rss(self) -> float:
        return max(s.rss_mib for s in self.samples)

    def as_json(self) -> dict[str, Any]:
        low, high = self.spread
        return {
            "median_s": round(self.median, 4),
            "min_s": round(low, 4),
            "max_s": round(high, 4),
            "runs_s": [round(s.seconds, 4) for s in self.samples],
            "peak_rss_mib": round(self.rss, 1),
            "cpu_median_s": round(self.cpu, 4),
            "node_cpu_median_s": round(self.node_cpu, 4),
        }


def interleaved(
    commands: dict[str, Callable[[int], Sample]], runs: int, warmup: int = 1
) -> dict[str, Series]:
    """Every command once per round, the order rotated each round; the `warmup` first rounds not counted."""
    names = list(commands)
    series = {name: Series() for name in names}
    for round_ in range(runs + warmup):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            sample = commands[name](round_)
            if round_ >= warmup:
                series[name].samples.append(sample)
    return series


# -- the tools ------------------------------------------------------------------------------------------


def runbook_command() -> list[str]:
    """The `runbook` console script next to this interpreter (what an operator types), else `-m engine`."""
    script = Path(sys.executable).with_name("runbook")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine"]


def bench_python(install: bool) -> Path | None:
    """The benchmark venv's interpreter with fabric and ansible-core; made on first use when `install`."""
    python = BENCH_VENV / "bin" / "python"
    ready = python.exists() and (BENCH_VENV / "bin" / "ansible-playbook").exists()
    if not ready and install:
        print(f"making the benchmark venv {BENCH_VENV} (fabric, ansible-core)…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "fabric>=3", "ansible-core>=2.16"],
            check=True,
            timeout=900,
        )
        ready = True
    return python if ready else None


def versions(python: Path | None) -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
    }
    if python is not None:
        probe = "import fabric, ansible.release as a; print(fabric.__version__, a.__version__)"
        out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            found["fabric"], found["ansible-core"] = out.stdout.split()
    return found


@dataclass(frozen=True)
class Rendered:
    """The rollback's commands as the engine renders them: local ones before and after the node block."""

    before: list[tuple[str, str]]
    node: str
    after: list[tuple[str, str]]
    probe: str  # the engine's preflight command for a node


def render(book: Path, variables: Sequence[str]) -> Rendered:
    from engine.executors.base import lookup_script
    from engine.options import Options, prepare
    from engine.transports import Transport

    _, plan = prepare(Options(str(book), var=tuple(variables), platform="linux"))
    before: list[tuple[str, str]] = []
    after: list[tuple[str, str]] = []
    node = ""
    programs: list[str] = []
    for step in plan.steps:
        if not step.hosts:
            continue  # the manual step
        variant = step.hosts[0].variant("linux")
        assert variant is not None
        if step.hosts[0].host.transport is Transport.LOCAL:
            (after if node else before).append((variant.script, step.hosts[0].cwd or "."))
        else:
            node = variant.script
            programs += [p for p in step.programs if p not in programs]
    # what SSHExecutor.probe sends each node before any step: its platform and the programs it lacks
    probe = "exec sh -c " + shlex.quote("uname -s" + (f"; {lookup_script(programs)}" if programs else ""))
    return Rendered(before, node, after, probe)


def ssh_argv(node: SSHDNode, known_hosts: Path) -> list[str]:
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "KexAlgorithms=curve25519-sha256",
        "-i",
        str(node.client_key),
        "-p",
        str(node.port),
        "-l",
        node.user,
        node.address,
    ]


def floor_script(work: Path, rendered: Rendered, nodes: Sequence[SSHDNode], known_hosts: Path) -> Path:
    """The OpenSSH floor as a bash script: local commands in order, one `ssh` per node all at once."""
    out = work / "floor-out"
    out.mkdir(exist_ok=True)

    def local(script: str, cwd: str) -> str:
        return f"(cd {shlex.quote(cwd)} && sh -ec {shlex.quote(script)}) >>{out}/local.log 2>&1\n"

    lines = ["#!/bin/bash\nset -e\n"] + [local(s, c) for s, c in rendered.before]
    remote = shlex.quote("sh -ec " + shlex.quote(rendered.node))
    for i, node in enumerate(nodes):
        argv = " ".join(shlex.quote(a) for a in ssh_argv(node, known_hosts))
        lines.append(f"{argv} {remote} </dev/null >{out}/node-{i}.log 2>&1 &\npids[{i}]=$!\n")
    lines.append('failed=0\nfor pid in "${pids[@]}"; do wait "$pid" || failed=1; done\n[ $failed = 0 ]\n')
    lines += [local(s, c) for s, c in rendered.after]
    path = work / "floor.sh"
    path.write_text("".join(lines))
    return path


def fabric_spec(work: Path, rendered: Rendered, nodes: Sequence[SSHDNode]) -> Path:
    (work / "fabric_rollback.py").write_text(_FABRIC)
    spec = {
        "before": rendered.before,
        "node": rendered.node,
        "after": rendered.after,
        "probe": rendered.probe,
        "hosts": [f"{n.user}@{n.address}:{n.port}" for n in nodes],
        "key": str(nodes[0].client_key),
    }
    path = work / "fabric.json"
    path.write_text(json.dumps(spec))
    return path


def ansible_files(work: Path, rendered: Rendered, nodes: Sequence[SSHDNode]) -> tuple[Path, Path]:
    inventory = work / "inventory.ini"
    inventory.write_text(
        "[nodes]\n"
        + "".join(
            f"n{i} ansible_host={n.address} ansible_port={n.port} ansible_user={n.user} "
            f"ansible_ssh_private_key_file={n.client_key}\n"
            for i, n in enumerate(nodes)
        )
        + f"[all:vars]\nansible_python_interpreter={sys.executable}\n"
    )

    def local_play(commands: list[tuple[str, str]]) -> dict[str, Any]:
        tasks = [
            {"shell": script, "args": {"chdir": cwd, "executable": "/bin/sh"}} for script, cwd in commands
        ]
        return {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}

    node_play = {
        "hosts": "nodes",
        "gather_facts": False,
        "tasks": [{"shell": rendered.node, "args": {"executable": "/bin/sh"}}],
    }
    playbook = work / "rollback-playbook.yml"
    playbook.write_text(json.dumps([local_play(rendered.before), node_play, local_play(rendered.after)]))
    return inventory, playbook


# -- one lab per N ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    work: Path
    home: Path
    nodes: Sequence[SSHDNode]
    book: Path
    variables: list[str]
    env: dict[str, str]


def make_lab(base: Path, nodes: Sequence[SSHDNode], source: Path = rb.HA_ROLLBACK) -> Lab:
    count = len(nodes)
    work = base / f"n{count}"
    home = work / "home"
    lab = rb.operator_lab(work, home, nodes)
    lab.rke_dir.mkdir(parents=True)
    lab.bin_dir.mkdir(parents=True)
    for path, text in ((lab.rke_dir / "rke_linux-amd64", _RKE), (lab.bin_dir / "kubectl", _KUBECTL)):
        path.write_text(text)
        path.chmod(0o755)
    for node in nodes:
        docker = node.bin_dir / "docker"
        docker.write_text(_DOCKER)
        docker.chmod(0o755)
    (lab.rke_dir / "rancher-cluster.yml").write_text(rb.cluster_yaml(nodes))
    (lab.rke_dir / "rancher-cluster.rkestate").write_text("{}\n")
    for kubeconfig in ("kube_config_rancher-cluster.yml", "kube_config-rancher-cluster.yml"):  # new, old name
        (lab.rke_dir / kubeconfig).write_text("apiVersion: v1\nkind: Config\n")
    text = source.read_text()
    assert "    concurrency: 10\n" in text, "ha-rollback's node target no longer says `concurrency: 10`"
    book = work / "ha-rollback.yml"
    book.write_text(text.replace("    concurrency: 10\n", f"    concurrency: {count}\n"))
    env = lab.env()
    env.pop("PYTHONPATH", None)  # the console script finds its own engine, as an operator's does
    return Lab(work, home, nodes, book, [*rb.HA_VARS, f"rke_dir={lab.rke_dir}"], env)


def rollback_commands(
    lab: Lab, python: Path | None, with_ansible: bool, before: Path | None = None, team: str | None = None
) -> dict[str, Callable[[int], Sample]]:
    rendered = render(lab.book, lab.variables)
    known_hosts = lab.home / ".ssh" / "known_hosts"
    floor = floor_script(lab.work, rendered, lab.nodes, known_hosts)
    engine = [
        *runbook_command(),
        "run",
        str(lab.book),
        *(a for v in lab.variables for a in ("--var", v)),
        "--yes",
        "--confirm-manual",
    ]
    logs = lab.work / "logs"
    logs.mkdir(exist_ok=True)
    nodes = NodeCPU(lab.nodes)

    def tool(
        name: str, argv: Callable[[int], list[str]], env: dict[str, str] = lab.env
    ) -> Callable[[int], Sample]:
        return lambda r: measure(argv(r), env, lab.work, logs / f"{name}-{r}.log", nodes)

    commands: dict[str, Callable[[int], Sample]] = {
        "engine": tool("engine", lambda r: [*engine, "--state-dir", str(lab.work / f"state-{r}")]),
        "floor": tool("floor", lambda r: ["bash", str(floor)]),
        "imports": tool("imports", lambda r: [sys.executable, "-c", UNAVOIDABLE_IMPORTS]),
    }
    if team is not None:  # the same run with the team's shared state on a local PostgreSQL (issue 21)
        commands["engine+postgres"] = tool(
            "engine-postgres",
            lambda r: [*engine, "--state-dir", str(lab.work / f"state-pg-{r}")],
            {**lab.env, "RUNBOOK_STATE": team},
        )
    if before is not None:  # another checkout's engine, same runbook, same lab: before and after at once
        old = [str(before / ".venv" / "bin" / "runbook"), *engine[1:]]
        commands["engine-before"] = tool(
            "engine-before", lambda r: [*old, "--state-dir", str(lab.work / f"state-before-{r}")]
        )
    if python is not None:
        spec = fabric_spec(lab.work, rendered, lab.nodes)
        script = lab.work / "fabric_rollback.py"
        commands["fabric"] = tool("fabric", lambda r: [str(python), str(script), str(spec)])
        # fabric also making the one round trip the engine must make to every host before any step
        commands["fabric+probe"] = tool(
            "fabric-probe", lambda r: [str(python), str(script), str(spec), "--probe"]
        )
    if python is not None and with_ansible:
        inventory, playbook = ansible_files(lab.work, rendered, lab.nodes)
        control = Path(tempfile.mkdtemp(prefix="rb-ans-", dir="/tmp"))  # a unix socket path holds 108 bytes
        ansible_env = {
            **lab.env,
            "ANSIBLE_GATHERING": "explicit",
            "ANSIBLE_HOME": str(lab.work / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(lab.work / "ansible-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=1s -o KexAlgorithms=curve25519-sha256"
            f" -o UserKnownHostsFile={lab.home / '.ssh' / 'known_hosts'}",  # ssh's ~ is passwd's, not $HOME
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        playbook_bin = python.with_name("ansible-playbook")
        commands["ansible"] = tool(
            "ansible",
            lambda r: [str(playbook_bin), "-i", str(inventory), "-f", str(len(lab.nodes)), str(playbook)],
            ansible_env,
        )
    return commands


# -- start-up ---------------------------------------------------------------------------------------------


def startup_commands(base: Path, lab: Lab) -> dict[str, Callable[[int], Sample]]:
    """validate and plan of the shipped rollback vs the imports they cannot avoid; with the engine's
    bytecode, and from a copy of the source that has none (PYTHONDONTWRITEBYTECODE=1: never written)."""
    source = base / "uncompiled"
    shutil.copytree(ROOT / "engine", source / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in lab.env.items() if k != "PYTHONPATH"}
    uncompiled = {**env, "PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    vars_ = [a for v in lab.variables for a in ("--var", v)]
    book = str(rb.HA_ROLLBACK)
    runbook = runbook_command()
    logs = base / "startup-logs"
    logs.mkdir(exist_ok=True)

    def run(name: str, argv: list[str], environ: dict[str, str]) -> Callable[[int], Sample]:
        # `python -m` puts the working directory first on sys.path: the copy's, for the uncompiled rows
        cwd = source if environ is uncompiled else ROOT
        return lambda r: measure(argv, environ, cwd, logs / f"{name}-{r}.log")

    imports = [sys.executable, "-c", "import jinja2, jsonschema, yaml"]
    large = write_large_runbook(base, steps=1000, hosts=50)
    return {
        "imports": run("imports", imports, env),
        "validate": run("validate", [*runbook, "validate", book], env),
        "plan": run("plan", [*runbook, "plan", book, *vars_], env),
        "validate-uncompiled": run(
            "validate-uncompiled", [sys.executable, "-m", "engine", "validate", book], uncompiled
        ),
        "plan-uncompiled": run(
            "plan-uncompiled", [sys.executable, "-m", "engine", "plan", book, *vars_], uncompiled
        ),
        "plan-1000-steps-50-hosts": run("plan-large", [*runbook, "plan", str(large)], env),
    }


# -- the whole benchmark ------------------------------------------------------------------------------------


@contextmanager
def sshd_nodes(base: Path, count: int) -> Iterator[list[SSHDNode]]:
    base.mkdir(parents=True, exist_ok=True)
    cluster = SSHDCluster(base)
    try:
        yield cluster.start(count)
    finally:
        cluster.stop()


@contextmanager
def team_state() -> Iterator[str]:
    """A PostgreSQL server of its own (tests/pgserver.py), fsync on as a team's would run, migrated: the
    connection string of an operator."""
    server = PgServer(cluster_directory() / "bench").init().start()
    try:
        server.sql("ALTER SYSTEM SET fsync = on")
        server.restart()
        server.create_roles()
        server.create_database("team")
        migrate_as_superuser(server, "team")
        yield server.url("alice", "team")
    finally:
        server.stop("immediate")
        shutil.rmtree(server.directory.parent, ignore_errors=True)


def node_ratio(a: Series, b: Series | None) -> float | None:
    return None if b is None or not b.node_cpu else round(a.node_cpu / b.node_cpu, 3)


def ratio(a: Series | None, b: Series | None) -> float | None:
    return None if a is None or b is None else round(a.median / b.median, 3)


def compiled(checkout: Path) -> None:
    """Write the engine's bytecode before anything is measured, as `pip install` does for an operator: with
    PYTHONDONTWRITEBYTECODE=1 in the environment (some shells and CI set it), a source edited since its last
    compile would otherwise be recompiled by every measured process. The *uncompiled* start-up rows measure
    that case on purpose, from a copy without bytecode."""
    compileall.compile_dir(checkout / "engine", quiet=1)


def run_benchmark(
    counts: Sequence[int],
    runs: int,
    startup_runs: int,
    ansible_max: int,
    install: bool,
    out: Path | None,
    warmup: int = 1,
    others: bool = True,
    book: Path = rb.HA_ROLLBACK,
    before: Path | None = None,
) -> dict[str, Any]:
    for checkout in (ROOT, *([before] if before else [])):
        compiled(checkout)
    python = bench_python(install) if others else None
    if python is None:
        print("fabric and ansible: no benchmark venv (run without --quick to make it); left out", flush=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(python),
        "runs": runs,
        "warmup_rounds": warmup,
        "stand_ins_sleep_s": STAND_INS_TOTAL,
        "runbook": str(book),
        "before": str(before) if before else None,
        "rollback": {},
    }
    with tempfile.TemporaryDirectory(prefix="rb-bench-") as tmp, team_state() as team:
        base = Path(tmp)
        with sshd_nodes(base / "sshd", max(counts)) as nodes:
            for count in counts:
                print(f"ha-rollback on {count} node(s), {runs} interleaved runs…", flush=True)
                lab = make_lab(base, nodes[:count], book)
                commands = rollback_commands(lab, python, count <= ansible_max, before, team)
                series = interleaved(commands, runs, warmup)
                row = {name: s.as_json() for name, s in series.items()}
                bound = series["floor"].median + series["imports"].median
                row["ratios"] = {
                    "engine/floor": ratio(series["engine"], series["floor"]),
                    "(floor+imports)/floor": round(bound / series["floor"].median, 3),
                    "engine/fabric": ratio(series["engine"], series.get("fabric")),
                    "engine/(fabric+probe)": ratio(series["engine"], series.get("fabric+probe")),
                    "ansible/engine": ratio(series.get("ansible"), series["engine"]),
                    "engine/engine-before": ratio(series["engine"], series.get("engine-before")),
                    "engine+postgres/engine": ratio(series.get("engine+postgres"), series["engine"]),
                    "node CPU engine/(fabric+probe)": node_ratio(
                        series["engine"], series.get("fabric+probe")
                    ),
                }
                report["rollback"][str(count)] = row
                print(f"  {summary_line(row)}", flush=True)
            print(f"start-up, {startup_runs} interleaved runs…", flush=True)
            lab = make_lab(base / "startup", nodes[: min(counts)], book)
            startup = interleaved(startup_commands(base, lab), startup_runs, warmup)
    imports = startup["imports"]
    report["startup"] = {name: s.as_json() for name, s in startup.items()}
    report["startup"]["ratios"] = {
        f"{name}/imports": ratio(s, imports) for name, s in startup.items() if name != "imports"
    }
    report["startup"]["cpu_ratios"] = {  # steadier than wall time on a machine others share
        f"{name}/imports": round(s.cpu / imports.cpu, 3) for name, s in startup.items() if name != "imports"
    }
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "bench.md").write_text(markdown(report))
        print(f"results: {out / 'bench.md'}, {out / 'bench.json'}")
    print(markdown(report))
    return report


def summary_line(row: dict[str, Any]) -> str:
    return (
        "  ".join(f"{k} {v['median_s']:.2f}s" for k, v in row.items() if k != "ratios")
        + "  "
        + "  ".join(f"{k} {v:.2f}" for k, v in row["ratios"].items() if v is not None)
    )


TARGETS = {  # issue 25: the engine's own share against the bound, per N; ratios against fabric + probe
    "own share s": {"3": 0.05, "20": 0.10, "100": 0.30},
    "engine/(fabric+probe)": {"100": 1.0, "250": 1.0},
    "node CPU engine/(fabric+probe)": 1.05,
    "engine+postgres/engine": {"20": 1.15, "100": 1.15},
    "ansible/engine": {"20": 10.0},
    "rss": {"100": 80.0, "250": 120.0},
    "validate/imports": 1.25,
    "plan/imports": 1.4,
}


def table(header: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table (after a blank line): `header` ("a | b | c"), its rule, one line per row."""
    columns = header.split(" | ")
    lines = ["", f"| {header} |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(report: dict[str, Any]) -> str:
    def cell(value: dict[str, Any] | None) -> str:
        if value is None:
            return "—"
        return f"{value['median_s']:.2f} s ({value['min_s']:.2f}–{value['max_s']:.2f})"

    def rss(value: dict[str, Any] | None) -> str:
        return "—" if value is None else f"{value['peak_rss_mib']:.0f}"

    def cpu(value: dict[str, Any] | None) -> str:
        return "—" if value is None else f"{value['cpu_median_s']:.2f} s"

    def node(value: dict[str, Any] | None) -> str:
        return "—" if value is None else f"{value['node_cpu_median_s']:.2f} s"

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}×"

    def seconds(value: float | None) -> str:
        return "—" if value is None else f"≤ {value:+.2f} s"

    rollback = report["rollback"].items()
    lines = [
        "# `invoke bench`: whole processes, interleaved",
        "",
        f"{report['when']}, commit {report['commit']}, {report['machine']['cpus']} CPUs, load "
        f"{report['machine']['load_before']} before / {report['machine'].get('load_after')} after; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        "`runbook run` of ha-rollback (a copy with `concurrency: N`), stand-ins sleeping "
        f"{report['stand_ins_sleep_s']:.2f} s in total; median (min–max) of {report['runs']} runs after "
        f"{report['warmup_rounds']} warm-up round(s); peak RSS in MiB; CPU: user + system of the process and "
        "the children it waited for (median).",
    ]
    lines += table(
        "N | engine | OpenSSH floor | fabric | ansible-playbook | engine/floor | engine/fabric | "
        "ansible/engine | RSS engine | RSS fabric | RSS ansible | CPU engine | CPU floor | "
        "CPU fabric",
        (
            [
                count,
                cell(row["engine"]),
                cell(row["floor"]),
                cell(row.get("fabric")),
                cell(row.get("ansible")),
            ]
            + [fmt(row["ratios"][k]) for k in ("engine/floor", "engine/fabric", "ansible/engine")]
            + [rss(row["engine"]), rss(row.get("fabric")), rss(row.get("ansible"))]
            + [cpu(row["engine"]), cpu(row["floor"]), cpu(row.get("fabric"))]
            for count, row in rollback
        ),
    )
    lines += [
        "",
        "What no engine on these libraries can go below: before its first step it must import jinja2, "
        "jsonschema, yaml and paramiko (`imports`, run in the same rounds: "
        f"`python -c \"{UNAVOIDABLE_IMPORTS}\"`), and the floor's work all comes after that. The engine's own "
        "share is what it takes beyond floor + imports.",
    ]

    def bound(count: str, row: dict[str, Any]) -> list[str]:
        floor, imports, engine = (row[k]["median_s"] for k in ("floor", "imports", "engine"))
        return [
            count,
            f"{floor:.2f} s",
            f"{imports:.2f} s",
            f"{floor + imports:.2f} s",
            fmt(row["ratios"]["(floor+imports)/floor"]),
            fmt(row["ratios"]["engine/floor"]),
            f"{engine - floor - imports:+.2f} s",
            seconds(TARGETS["own share s"].get(count)),
        ]

    lines += table(
        "N | floor | imports | floor + imports | (floor + imports)/floor | engine/floor | "
        "engine − (floor + imports) | target",
        (bound(count, row) for count, row in rollback),
    )
    lines += [
        "",
        "Node CPU: what the nodes' sshds and everything they started spent during the command; they share this "
        "machine's cores with the tool measured, so it costs that tool wall time. *fabric + probe*: the same "
        "fabric script, first sending every node the engine's preflight command (platform and program lookup, "
        "one session each), which the engine must do before any step and fabric never does.",
    ]
    tools = ("engine", "fabric", "fabric+probe")
    lines += table(
        "N | engine | fabric | fabric + probe | engine/fabric | engine/(fabric + probe) (target) | "
        "CPU engine | CPU fabric | CPU fabric + probe | node CPU engine | node CPU fabric | "
        "node CPU fabric + probe | node CPU floor | node CPU engine/(fabric + probe) (target)",
        (
            [count, *(cell(row.get(t)) for t in tools), fmt(row["ratios"]["engine/fabric"])]
            + [
                f"{fmt(row['ratios']['engine/(fabric+probe)'])} ({fmt(TARGETS['engine/(fabric+probe)'].get(count))})"
            ]
            + [cpu(row.get(t)) for t in tools]
            + [node(row.get(t)) for t in (*tools, "floor")]
            + [
                f"{fmt(row['ratios'].get('node CPU engine/(fabric+probe)'))} "
                f"({fmt(TARGETS['node CPU engine/(fabric+probe)'])})"
            ]
            for count, row in rollback
        ),
    )
    team = [(count, row) for count, row in rollback if row.get("engine+postgres")]
    if team:
        lines += [
            "",
            "Team mode: the same run with its lock, journal and history in a local PostgreSQL "
            "(`RUNBOOK_STATE`, fsync on), in the same rounds.",
        ]
        lines += table(
            "N | engine (files) | engine + postgres | engine+postgres/engine | target",
            (
                [
                    count,
                    cell(row["engine"]),
                    cell(row["engine+postgres"]),
                    fmt(row["ratios"]["engine+postgres/engine"]),
                    fmt(TARGETS["engine+postgres/engine"].get(count)),
                ]
                for count, row in team
            ),
        )
    if report.get("before"):
        lines += [
            "",
            f"Before and after, same runbook and lab: `engine-before` is {report['before']}'s `runbook`.",
        ]
        lines += table(
            "N | engine | engine-before | engine/engine-before | RSS engine | RSS before | CPU engine | "
            "CPU before",
            (
                [
                    count,
                    cell(row["engine"]),
                    cell(row.get("engine-before")),
                    fmt(row["ratios"]["engine/engine-before"]),
                    rss(row["engine"]),
                    rss(row.get("engine-before")),
                    cpu(row["engine"]),
                    cpu(row.get("engine-before")),
                ]
                for count, row in rollback
            ),
        )
    startup = report.get("startup", {})
    if startup:
        lines += [
            "",
            "Start-up (`runbook validate` / `plan` of runbooks/ha-rollback.yml) against "
            "`python -c 'import jinja2, jsonschema, yaml'`; *uncompiled*: a copy of engine/ without "
            "bytecode, PYTHONDONTWRITEBYTECODE=1.",
        ]
        lines += table(
            "command | wall median (min–max) | × imports | CPU median | CPU × imports | peak RSS MiB",
            (
                [
                    name,
                    cell(value),
                    fmt(startup["ratios"].get(f"{name}/imports")),
                    f"{value['cpu_median_s']:.2f} s",
                    fmt(startup["cpu_ratios"].get(f"{name}/imports")),
                    rss(value),
                ]
                for name, value in startup.items()
                if name not in ("ratios", "cpu_ratios")
            ),
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: N=3, 3 runs, no new venv")
    parser.add_argument("--nodes", type=int, nargs="+", help="node counts (default 3 20 100 250)")
    parser.add_argument("--runs", type=int, help="interleaved runs per command (default 5; quick 3)")
    parser.add_argument("--startup-runs", type=int, help="runs of the start-up commands (default 21)")
    parser.add_argument("--ansible-max", type=int, default=20, help="largest N ansible runs at (default 20)")
    parser.add_argument("--out", default=str(RESULTS), help="results directory ('' for none)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted (default 1)")
    parser.add_argument(
        "--engine-only", action="store_true", help="engine and floor only: no fabric, ansible"
    )
    parser.add_argument("--runbook", default=str(rb.HA_ROLLBACK), help="the rollback runbook to copy")
    parser.add_argument("--compare-with", help="a checkout whose .venv/bin/runbook runs too (engine-before)")
    args = parser.parse_args(argv)
    counts = args.nodes or ([3] if args.quick else [3, 20, 100, 250])
    if max(counts) > 1000:
        parser.error("at most 1000 nodes: one loopback address each (tests/sshd.py's node_address)")
    runs = args.runs or (3 if args.quick else 5)
    startup_runs = args.startup_runs or (5 if args.quick else 21)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the sshd nodes are stopped
    run_benchmark(
        counts,
        runs,
        startup_runs,
        args.ansible_max if not args.quick else 0,
        install=not args.quick,
        out=Path(args.out) if args.out else None,
        warmup=args.warmup,
        others=not args.engine_only,
        book=Path(args.runbook),
        before=Path(args.compare_with) if args.compare_with else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
