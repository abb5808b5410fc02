"""Helpers for the `run` acceptance tests (and `benchmarks/run_overhead.py`): labs, SSH homes, the CLI.

- `write_ssh_home()` writes `~/.ssh/known_hosts` (and optionally `~/.ssh/config`) for sshd nodes into a HOME;
- `write_lab()` builds what an operator has for `runbooks/ha-rollback.yml`: an RKE directory with a recording
  `rke_linux-amd64`, the `.rkestate`, the kubeconfig and a cluster file listing sshd nodes, plus a bin
  directory with a recording `kubectl`;
- `local_stand_in()` / `local_calls()` record calls on this machine the way `SSHDNode.stand_in` does on a node;
- `run_cli()` / `start_cli()` run `python -m engine run …` as a subprocess, in a given cwd, with a bounded wait.

Standalone apart from `sshd` (no pytest), so the benchmark can use it too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sshd import SSHDNode

ROOT = Path(__file__).resolve().parent.parent
HA_ROLLBACK = ROOT / "runbooks" / "ha-rollback.yml"
HA_VARS = ("snapshot=pre-upgrade-2026-11-26", "prior_version=v2.0.8")
CLI_TIMEOUT = 60.0

# What `docker ps` prints on an RKE node with canal: one flannel and one calico container (ids first).
DOCKER_PS = (
    'a1b2c3d4e5f6 rancher/coreos-flannel:v0.10.0 "/opt/bin/flanneld" k8s_kube-flannel_canal-x\n'
    'b2c3d4e5f6a1 rancher/calico-node:v3.1.3 "start_runit" k8s_calico-node_canal-x\n'
)
FLANNEL_ID, CALICO_ID = "a1b2c3d4e5f6", "b2c3d4e5f6a1"
COMPONENTS = ["kube-apiserver", "kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"]

_LOCAL_STAND_IN = """\
#!{python} -S
import json, os, sys, time
call = {{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]], "cwd": os.getcwd(), "time": time.time(),
        "host": os.environ.get("RUNBOOK_HOST"),
        "pid": os.getpid()}}
with open({log!r}, "a") as log:
    log.write(json.dumps(call) + "\\n")
sys.stdout.write({stdout!r})
sys.exit({exit_code})
"""


@dataclass(frozen=True)
class Lab:
    """An operator's workstation for the ha-rollback runbook; local stand-ins record into `calls_log`."""

    root: Path
    rke_dir: Path
    bin_dir: Path
    calls_log: Path
    cluster_file: Path

    def env(self, home: Path) -> dict[str, str]:
        """The environment of the engine subprocess: this HOME, no agent, the lab's bin first on PATH."""
        return cli_env(home, self.bin_dir)

    def vars(self) -> list[str]:
        return [arg for value in (*HA_VARS, f"rke_dir={self.rke_dir}") for arg in ("--var", value)]

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        return local_calls(self.calls_log, name)


def write_ssh_home(home: Path, nodes: Iterable[SSHDNode], config: str | None = None,
                   replace: Mapping[str, str] | None = None) -> Path:
    """`home/.ssh/known_hosts` listing `nodes` as `[address]:port`; `replace` maps an address to another
    public key line (a changed host key); `config` is written as `~/.ssh/config` if given."""
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    lines = [f"{n.known_hosts_name} {(replace or {}).get(n.address, n.host_public_key)}\n" for n in nodes]
    (ssh / "known_hosts").write_text("".join(lines))
    if config is not None:
        (ssh / "config").write_text(config)
    return ssh / "known_hosts"


def local_stand_in(directory: Path, name: str, log: Path, exit_code: int = 0, stdout: str = "") -> Path:
    """An executable `directory/name` recording each call (argv, cwd, time, pid) as a JSON line in `log`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(_LOCAL_STAND_IN.format(python=sys.executable, log=str(log), stdout=stdout, exit_code=exit_code))
    path.chmod(0o755)
    return path


def local_calls(log: Path, name: str | None = None) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    calls = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [c for c in calls if name is None or c["argv"][0] == name]


def cluster_yaml(nodes: Sequence[SSHDNode], ports: Mapping[str, int] | None = None) -> str:
    """An RKE cluster file whose nodes are sshd nodes (address, user, port, the client key as ssh_key_path)."""
    entries = "".join(
        f"  - address: {n.address}\n    user: {n.user}\n    port: {(ports or {}).get(n.address, n.port)}\n"
        f"    ssh_key_path: {n.client_key}\n    role: [controlplane, etcd, worker]\n" for n in nodes)
    return f"nodes:\n{entries}"


def write_lab(root: Path, cluster_text: str) -> Lab:
    """The RKE directory (cluster file `cluster_text`) and the recording local stand-ins for ha-rollback."""
    rke_dir, bin_dir, log = root / "rke", root / "bin", root / "local-calls.jsonl"
    rke_dir.mkdir(parents=True)
    local_stand_in(rke_dir, "rke_linux-amd64", log, stdout="INFO[0000] Running RKE version: v0.1.9 (stand-in)\n")
    local_stand_in(bin_dir, "kubectl", log, stdout="deployment.extensions/cattle image updated\n")
    cluster = rke_dir / "rancher-cluster.yml"
    cluster.write_text(cluster_text)
    (rke_dir / "rancher-cluster.rkestate").write_text("{}\n")
    (rke_dir / "kube_config-rancher-cluster.yml").write_text("apiVersion: v1\nkind: Config\n")
    return Lab(root, rke_dir, bin_dir, log, cluster)


def docker_on(nodes: Iterable[SSHDNode], failing: str | None = None) -> None:
    """A recording `docker` on every node printing `docker ps`-like lines; on `failing` (an address) it exits 1."""
    for node in nodes:
        node.stand_in("docker", exit_code=1 if node.address == failing else 0, stdout=DOCKER_PS)


def cli_env(home: Path, *path_first: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "RUNBOOK_STATE_DIR", "COLUMNS")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1", **extra)
    env["PATH"] = os.pathsep.join([*(str(p) for p in path_first), env.get("PATH", "")])
    return env


def cli(args: Sequence[str | os.PathLike[str]], state_dir: Path) -> list[str]:
    """`python -m engine run ARGS --state-dir STATE_DIR` as an argv."""
    return [sys.executable, "-m", "engine", "run", *(str(a) for a in args), "--state-dir", str(state_dir)]


def run_cli(args: Sequence[str | os.PathLike[str]], cwd: Path, env: Mapping[str, str], state_dir: Path | None = None,
            stdin: str = "", timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the CLI to the end (bounded), `stdin` piped in (empty: immediate end of input)."""
    return subprocess.run(cli(args, state_dir or cwd / "state"), cwd=cwd, env=dict(env), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def start_cli(args: Sequence[str | os.PathLike[str]], cwd: Path, env: Mapping[str, str],
              state_dir: Path | None = None) -> subprocess.Popen[str]:
    """Start the CLI (for interrupting it); stdin at end of input, output collected by `communicate()`."""
    return subprocess.Popen(cli(args, state_dir or cwd / "state"), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(process: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    """SIGINT to the CLI (as Ctrl-C does), then its exit code and output (bounded; killed if it hangs)."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the run did not end {timeout}s after SIGINT:\n{out}\n{err}") from None
    return process.returncode, out, err


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll `condition` every 20 ms until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def processes_matching(pattern: str) -> list[str]:
    """`pgrep -af PATTERN`: processes (on this machine, nodes included) whose command line contains it."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, timeout=10)
    return found.stdout.splitlines()


def journal(state_dir: Path) -> list[dict[str, Any]]:
    """The records of the one run in `state_dir`."""
    [path] = sorted(state_dir.glob("runs/*/journal.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def write_runbook(directory: Path, text: str, name: str = "book.yml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def nodes_runbook(steps: str, name: str = "node-book", extra: str = "") -> str:
    """A runbook whose `nodes` target reads the cluster file `{{ cluster }}` (as ha-rollback does); `steps`
    is YAML for the steps list, indented by two spaces."""
    return f"""\
runbook: 1
name: {name}
version: "1.0"
title: Acceptance runbook on sshd nodes
variables:
  cluster: {{type: string, required: true}}
targets:
  nodes:
    ssh:
      from_file: "{{{{ cluster }}}}"
      each: nodes
      host: "{{{{ item.address }}}}"
      user: "{{{{ item.user }}}}"
      port: "{{{{ item.port }}}}"
      key_file: "{{{{ item.ssh_key_path }}}}"
{extra}steps:
{steps}"""


def summary_rows(stdout: str) -> list[tuple[str, str, str]]:
    """(step, host, status) for each row of the summary table printed at the end of a run."""
    _, found, table = stdout.rpartition("Summary\n")
    assert found, f"no summary table in:\n{stdout}"
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if line.startswith("│") and len(cells) >= 3:
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def output_lines(state_dir: Path, step: str, host: str) -> list[str]:
    """The full output file of `step` on `host` of the one run in `state_dir`: `<time> [stream] <line>` lines."""
    [path] = state_dir.glob(f"runs/*/{step}@{host}.log")
    return path.read_text().splitlines()
