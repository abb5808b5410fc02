"""Helpers for the end-to-end tests of the CLI (and `benchmarks/run_overhead.py`): an operator's lab, the CLI as
a real subprocess, runbooks written on the fly, stand-ins that record (or block), and what a run leaves behind.

- `Lab` is an operator's workstation: `run()` / `start()` run `python -m engine TASK …` in it, with its HOME and
  its state directory; `operator_lab()` makes one whose HOME reaches sshd nodes (`write_ssh_home()`);
- `write_rollback()` adds what an operator has for `runbooks/ha-rollback.yml`: an RKE directory with a recording
  `rke_linux-amd64`, the `.rkestate`, the kubeconfig and a cluster file (`cluster_yaml()`), and a recording `kubectl`;
- `nodes_runbook()` writes a runbook on sshd nodes; `blocking_stand_in()` / `block()` / `unblock()` hold a node's
  command until the test lets it go;
- `journal()`, `fold()`, `ends()`, `summary_rows()`, `output_lines()` read what a run left in its state directory.

Everything is bounded: every wait has a deadline, every subprocess a timeout. Standalone apart from `sshd` (no
pytest), so the benchmark can use it too.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sshd import SSHDNode

from engine.executors.wrapper import _WRAPPER

ROOT = Path(__file__).resolve().parent.parent
HA_ROLLBACK = ROOT / "runbooks" / "ha-rollback.yml"
RKE_DATA = ROOT / "tests" / "data" / "rke"
HA_VARS = ("snapshot=pre-upgrade-2026-11-26", "prior_version=v2.0.8", "approvals=0")  # 0: one operator
CLI_TIMEOUT = 60.0
STATE_TASKS = ("run", "runs", "checklist", "approvals", "approve")  # the CLI tasks that take --state-dir

Nodes = Callable[[int], list[SSHDNode]]  # the `sshd_nodes` fixture: `sshd_nodes(3)` → three running nodes
Record = dict[str, Any]  # one line of a journal, or one recorded call of a stand-in

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

# Like `SSHDNode.stand_in` (same call record, so `node.calls()` sees it), plus a brake: while the file
# `$HOME/<name>.block` exists it touches `$HOME/<name>.started` and waits (at most 20 s) for it to go away.
_BLOCKING_STAND_IN = """\
#!{python} -S
import json, os, sys, time
call = {{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "node": os.environ.get("RUNBOOK_TEST_NODE"), "time": time.time(), "pid": os.getpid()}}
with open({log!r}, "a") as log:
    log.write(json.dumps(call) + "\\n")
home, name = os.environ["HOME"], os.path.basename(sys.argv[0])
block = os.path.join(home, name + ".block")
if os.path.exists(block):
    open(os.path.join(home, name + ".started"), "w").close()
    deadline = time.time() + 20
    while os.path.exists(block) and time.time() < deadline:
        time.sleep(0.02)
print(name, "done", flush=True)
"""

# `rke --version` prints "rke version vX.Y.Z"; any other call prints what rke logs first.
_RKE_STAND_IN = """\
#!{python} -S
import json, os, sys, time
call = {{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]], "cwd": os.getcwd(), "time": time.time(),
        "host": os.environ.get("RUNBOOK_HOST"), "pid": os.getpid()}}
with open({log!r}, "a") as log:
    log.write(json.dumps(call) + "\\n")
if sys.argv[1:] == ["--version"]:
    print("rke version {version}")
else:
    print("INFO[0000] Running RKE version: {version} (stand-in)")
"""

_DOCKER_LIKE = """\
#!{python} -S
import json, os, sys, time
call = {{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "node": os.environ.get("RUNBOOK_TEST_NODE"), "time": time.time(), "pid": os.getpid()}}
with open({log!r}, "a") as log:
    log.write(json.dumps(call) + "\\n")
containers = {containers!r}
if sys.argv[1:2] == ["ps"]:
    sys.stdout.write({docker_ps!r})
    sys.stdout.write("".join("%012x k8s/%s  %s\\n" % (i, c, c) for i, c in enumerate(containers)))
elif sys.argv[1:2] == ["restart"]:
    failed = False
    for name in sys.argv[2:]:
        if name in containers or name in ({flannel!r}, {calico!r}):
            print(name)
        else:
            failed = True
            sys.stderr.write("Error response from daemon: No such container: %s\\n" % name)
    sys.exit(1 if failed else 0)
"""

_FROM_CLUSTER_FILE = """\
      from_file: "{{ cluster }}"
      each: nodes
      host: "{{ item.address }}"
      user: "{{ item.user }}"
      port: "{{ item.port }}"
      key_file: "{{ item.ssh_key_path }}"
"""


# -- the lab and the CLI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    """An operator's workstation: runs start in `root` as `home`, their state in `root/state`; local stand-ins
    in `root/bin` come first on PATH and record into `root/local-calls.jsonl`; `nodes` are its sshd nodes."""

    root: Path
    home: Path
    nodes: Sequence[SSHDNode] = ()

    @property
    def state(self) -> Path:
        """The `--state-dir` of every run."""
        return self.root / "state"

    @property
    def bin_dir(self) -> Path:
        """Local stand-ins (first on the engine's PATH)."""
        return self.root / "bin"

    @property
    def calls_log(self) -> Path:
        """Where the local stand-ins record their calls."""
        return self.root / "local-calls.jsonl"

    @property
    def rke_dir(self) -> Path:
        """The RKE directory `write_rollback()` fills."""
        return self.root / "rke"

    @property
    def book(self) -> Path:
        """Where `write()` puts a runbook by default."""
        return self.root / "book.yml"

    def write(self, text: str, name: str = "book.yml") -> Path:
        """A runbook in the lab's root."""
        return write_runbook(self.root, text, name)

    def env(self, **extra: str) -> dict[str, str]:
        """The engine's environment (`cli_env` with this HOME and the lab's bin first on PATH), then `extra`."""
        return {**cli_env(self.home, self.bin_dir), "TERM": "dumb", **extra}

    def argv(self, task: str, *args: str | os.PathLike[str]) -> list[str]:
        """`python -m engine TASK ARGS`, with `--state-dir STATE` last for the tasks that take it."""
        state = ["--state-dir", str(self.state)] if task in STATE_TASKS else []
        return [*cli(task, *args), *state]

    def run(
        self,
        *args: str | os.PathLike[str],
        stdin: str = "",
        task: str = "run",
        env: Mapping[str, str] | None = None,
        timeout: float = CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """The CLI to its end (bounded) in the root, `stdin` piped in (empty: immediate end of input)."""
        return subprocess.run(
            self.argv(task, *args),
            cwd=self.root,
            env=self.env(**(env or {})),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_here(
        self,
        *args: str | os.PathLike[str],
        stdin: str = "",
        task: str = "run",
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`run()`, in this process: the same CLI, arguments, directory, environment and piped stdin, in
        milliseconds instead of a Python start-up. For what needs no process of its own (no signals)."""
        return in_process(self.argv(task, *args)[3:], self.root, self.env(**(env or {})), stdin)

    def start(
        self,
        *args: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        ignoring: Sequence[int] = (),
    ) -> Running:
        """`run ARGS` in the background, to be signalled; stdin at end of input, output kept for `finish()`;
        started with the signals `ignoring` ignored (as `cmd &` in a script ignores SIGINT, or nohup SIGHUP)."""

        def ignore() -> None:
            for signum in ignoring:
                signal.signal(signum, signal.SIG_IGN)

        process = subprocess.Popen(
            self.argv("run", *args),
            cwd=self.root,
            env=self.env(**(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ignore if ignoring else None,
        )
        return Running(process)

    def calls(self, name: str | None = None, queries: bool = False) -> list[Record]:
        """The calls the local stand-ins recorded (argv, cwd, host, time, pid), oldest first; only `name`'s if given.
        `--version` calls (preflight asking the RKE binary, which changes nothing) only with `queries`."""
        if not self.calls_log.exists():
            return []
        calls = [json.loads(line) for line in self.calls_log.read_text().splitlines() if line]
        calls = [c for c in calls if queries or c["argv"][1:] != ["--version"]]
        return [c for c in calls if name is None or c["argv"][0] == name]

    def rollback_vars(self) -> list[str]:
        """The `--var` arguments of ha-rollback for this lab's RKE directory."""
        return [arg for value in (*HA_VARS, f"rke_dir={self.rke_dir}") for arg in ("--var", value)]


@dataclass(frozen=True)
class Running:
    """A `run` in the background; `stop()` signals it, `finish()` collects its exit code and output (bounded)."""

    process: subprocess.Popen[str]

    def stop(self, signum: int, timeout: float = 30.0) -> tuple[int, str, str]:
        """Send `signum` (SIGINT: as Ctrl-C does), then `finish()`."""
        self.process.send_signal(signum)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once it ends; killed, and an AssertionError, if it is not done in time."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"the run did not end within {timeout}s:\n{out}\n{err}") from None
        return self.process.returncode, out, err


def cli(task: str, *args: str | os.PathLike[str]) -> list[str]:
    """`python -m engine TASK ARGS` as an argv."""
    return [sys.executable, "-m", "engine", task, *(str(a) for a in args)]


def in_process(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m engine ARGV` run by `engine.cli.main` in this process, with `cwd`, `env` and `stdin` in
    place for its duration and its output captured; everything is put back afterwards."""
    from engine import cli  # imported here: the standalone benchmark loads this module before the engine

    saved = (dict(os.environ), os.getcwd(), sys.stdin, sys.stdout, sys.stderr, sys.argv)
    out, err = io.StringIO(), io.StringIO()
    argv = ["runbook", *argv]

    def overdue(signum: int, frame: object) -> None:  # bounded like a subprocess: a hang fails, never waits
        raise AssertionError(f"{' '.join(argv)} did not end within {CLI_TIMEOUT:g}s")

    previous_alarm = signal.signal(signal.SIGALRM, overdue)
    signal.alarm(int(CLI_TIMEOUT))
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.stdin, sys.stdout, sys.stderr, sys.argv = io.StringIO(stdin), out, err, argv
        try:
            cli.main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous_alarm)
        environ, directory, sys.stdin, sys.stdout, sys.stderr, sys.argv = saved
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(directory)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def cli_env(home: Path, *path_first: Path) -> dict[str, str]:
    """This environment with HOME `home`, no SSH agent, no RUNBOOK_* settings, wide uncoloured output and
    `path_first` at the front of PATH."""
    drop = ("SSH_AUTH_SOCK", "RUNBOOK_STATE_DIR", "RUNBOOK_STATE", "COLUMNS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RUNBOOK_VAR_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1")
    env["PATH"] = os.pathsep.join([*(str(p) for p in path_first), env.get("PATH", "")])
    return env


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 20 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def read_until_text(running: Running, text: str, timeout: float = 20.0) -> str:
    """What a background run printed, read as it comes until `text` shows (bounded); `finish()` gives the rest."""
    stdout = running.process.stdout
    assert stdout is not None
    seen, deadline = b"", time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {timeout}s:\n{seen.decode()}"
        ready, _, _ = select.select([stdout.fileno()], [], [], left)
        chunk = os.read(stdout.fileno(), 65536) if ready else b""
        assert chunk or not ready, f"the run ended without {text!r}:\n{seen.decode()}"
        seen += chunk
    return seen.decode()


def processes_matching(text: str) -> list[str]:
    """The command lines on this machine (the nodes' too: they are on 127.0.0.x) that contain `text`."""
    return [line for line in command_lines().splitlines() if text in line]


def drop_exit_status(pgid: int) -> None:
    """SIGKILL the SSH wrapper that would write the exit status of the node command group `pgid` (not the
    command): the command runs on, but the node keeps no exit status for it, as after a reboot; a resume then
    knows nothing of how it ended (`engine.executors.nodefiles`). Where sshd made the group (the usual case)
    the wrapper leads it and runs the command as its child; else (`setsid`) it is the leader's parent."""
    stat = Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[1].split()
    parent = int(stat[1])
    wrapped = b"\0" + _WRAPPER.encode() + b"\0"  # the wrapper's `sh -c` argument
    wrapper = parent if wrapped in Path(f"/proc/{parent}/cmdline").read_bytes() else pgid
    assert wrapped in Path(f"/proc/{wrapper}/cmdline").read_bytes()
    os.kill(wrapper, signal.SIGKILL)


def group_of(text: str) -> int:
    """The process group of the one process whose command line contains `text`."""
    table = subprocess.run(["ps", "-eww", "-o", "pgid=,args="], capture_output=True, text=True, timeout=10)
    [pgid] = {int(line.split(None, 1)[0]) for line in table.stdout.splitlines() if text in line}
    return pgid


def command_lines() -> str:
    """`ps -eww -o args`: the whole command line of every process."""
    found = subprocess.run(
        ["ps", "-eww", "-o", "args"], capture_output=True, text=True, timeout=10, check=True
    )
    return found.stdout


# -- HOME, nodes, runbooks -----------------------------------------------------------------------------------


def write_ssh_home(
    home: Path, nodes: Iterable[SSHDNode], config: str | None = None, replace: Mapping[str, str] | None = None
) -> Path:
    """`home/.ssh/known_hosts` listing `nodes` as `[address]:port`; `replace` maps an address to another
    public key line (a changed host key); `config` is written as `~/.ssh/config` if given."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700, exist_ok=True)
    lines = [f"{n.known_hosts_name} {(replace or {}).get(n.address, n.host_public_key)}\n" for n in nodes]
    (ssh / "known_hosts").write_text("".join(lines))
    if config is not None:
        (ssh / "config").write_text(config)
    return ssh / "known_hosts"


def identity_config(nodes: Sequence[SSHDNode]) -> str | None:
    """An ~/.ssh/config that gives every host the nodes' client key (None without nodes)."""
    return f"Host *\n  IdentityFile {nodes[0].client_key}\n" if nodes else None


def operator_lab(root: Path, home: Path, nodes: Sequence[SSHDNode]) -> Lab:
    """A lab in `root` (made) whose HOME trusts `nodes` and logs in to them with their client key."""
    write_ssh_home(home, nodes, config=identity_config(nodes))
    root.mkdir(parents=True, exist_ok=True)
    return Lab(root, home, nodes)


def blocking_lab(root: Path, home: Path, nodes: Sequence[SSHDNode]) -> Lab:
    """`operator_lab()` on `nodes`, each given a recording `docker` and a blocking `slow` (see `block()`)."""
    for node in nodes:
        node.stand_in("docker")
        blocking_stand_in(node, "slow")
    return operator_lab(root, home, nodes)


def local_stand_in(directory: Path, name: str, log: Path, exit_code: int = 0, stdout: str = "") -> Path:
    """An executable `directory/name` recording each call (argv, cwd, time, pid) as a JSON line in `log`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        _LOCAL_STAND_IN.format(python=sys.executable, log=str(log), stdout=stdout, exit_code=exit_code)
    )
    path.chmod(0o755)
    return path


def blocking_stand_in(node: SSHDNode, name: str) -> None:
    """A recording `name` on `node` that blocks while `block(node, name)` is in force."""
    path = node.bin_dir / name
    path.write_text(_BLOCKING_STAND_IN.format(python=sys.executable, log=str(node.calls_log)))
    path.chmod(0o755)


def block(node: SSHDNode, name: str) -> Path:
    """Make the next calls of the blocking stand-in `name` on `node` wait; returns its "started" file."""
    (node.home / f"{name}.block").touch()
    started = node.home / f"{name}.started"
    started.unlink(missing_ok=True)
    return started


def unblock(node: SSHDNode, name: str) -> None:
    """Let the blocking stand-in `name` on `node` go on."""
    (node.home / f"{name}.block").unlink(missing_ok=True)


def docker_on(nodes: Iterable[SSHDNode], failing: str | None = None) -> None:
    """A recording `docker` on every node printing `docker ps`-like lines; on `failing` (an address) it exits 1."""
    for node in nodes:
        node.stand_in("docker", exit_code=1 if node.address == failing else 0, stdout=DOCKER_PS)


def docker_nodes(sshd_nodes: Nodes, home: Path, identity_file: bool = False) -> list[SSHDNode]:
    """Three nodes, each with a recording `docker`, trusted through `home`'s ~/.ssh/known_hosts; with
    `identity_file`, ~/.ssh/config names their client key too (as `operator_lab` does)."""
    started = sshd_nodes(3)
    docker_on(started)
    write_ssh_home(home, started, config=identity_config(started) if identity_file else None)
    return started


def work_lab(tmp_path: Path, home: Path, nodes: Sequence[SSHDNode]) -> Lab:
    """The operator: runs start in tmp_path/work (the journal goes to work/state) with HOME `home`."""
    root = tmp_path / "work"
    root.mkdir()
    return Lab(root, home, nodes)


def calls(node: SSHDNode, name: str) -> list[list[str]]:
    """The argv of each recorded call of `name` on `node`, oldest first."""
    return [list(c["argv"]) for c in node.calls(name)]  # type: ignore[call-overload]


def cluster_yaml(nodes: Sequence[SSHDNode], ports: Mapping[str, int] | None = None) -> str:
    """An RKE cluster file whose nodes are sshd nodes (address, user, port, the client key as ssh_key_path)."""
    entries = "".join(
        f"  - address: {n.address}\n    user: {n.user}\n    port: {(ports or {}).get(n.address, n.port)}\n"
        f"    ssh_key_path: {n.client_key}\n    role: [controlplane, etcd, worker]\n"
        for n in nodes
    )
    return f"nodes:\n{entries}"


def write_rollback(lab: Lab, cluster_text: str, rke_version: str = "v0.2.8", rkestate: bool = True) -> None:
    """What ha-rollback needs in `lab`: the RKE directory (cluster file `cluster_text`, its `.rkestate` if
    `rkestate`, the kubeconfig under RKE's name) with a recording `rke_linux-amd64` that says it is
    `rke_version`, and a recording `kubectl` in the lab's bin."""
    lab.rke_dir.mkdir(parents=True)
    rke = lab.rke_dir / "rke_linux-amd64"
    rke.write_text(_RKE_STAND_IN.format(python=sys.executable, log=str(lab.calls_log), version=rke_version))
    rke.chmod(0o755)
    local_stand_in(
        lab.bin_dir, "kubectl", lab.calls_log, stdout="deployment.extensions/cattle image updated\n"
    )
    (lab.rke_dir / "rancher-cluster.yml").write_text(cluster_text)
    if rkestate:
        (lab.rke_dir / "rancher-cluster.rkestate").write_text("{}\n")
    (lab.rke_dir / "kube_config_rancher-cluster.yml").write_text("apiVersion: v1\nkind: Config\n")


def rke_cluster(name: str, nodes: Sequence[SSHDNode], **extra: str) -> str:
    """The cluster file tests/data/rke/`name` with its $-placeholders filled: $USER, $ADDRi and $PORTi for
    `nodes`, and `extra` (KEY, BASTION, ...)."""
    values = {"USER": nodes[0].user if nodes else "rancher", **extra}
    for index, node in enumerate(nodes):
        values.update({f"ADDR{index}": node.address, f"PORT{index}": str(node.port)})
    return fill_cluster(name, values)


def fill_cluster(name: str, values: Mapping[str, str]) -> str:
    """tests/data/rke/`name` with its $-placeholders replaced by `values` (a missing one is an error)."""
    return string.Template((RKE_DATA / name).read_text()).substitute(values)


def inline_key(path: Path, indent: int = 6) -> str:
    """The private key at `path` as a YAML block scalar's lines (for $INLINE_KEY)."""
    return "".join(" " * indent + line + "\n" for line in path.read_text().splitlines())


def docker_like(node: SSHDNode, containers: Sequence[str]) -> None:
    """A recording `docker` on `node` that has only `containers`: `ps` lists them (plus flannel and calico),
    `restart` restarts those it has and, like docker, fails (exit 1) naming each one it does not have."""
    path = node.bin_dir / "docker"
    path.write_text(
        _DOCKER_LIKE.format(
            python=sys.executable,
            log=str(node.calls_log),
            containers=list(containers),
            docker_ps=DOCKER_PS,
            flannel=FLANNEL_ID,
            calico=CALICO_ID,
        )
    )
    path.chmod(0o755)


def write_runbook(directory: Path, text: str, name: str = "book.yml") -> Path:
    """`text` as `directory/name`."""
    path = directory / name
    path.write_text(text)
    return path


def nodes_runbook(name: str, steps: str, nodes: Sequence[SSHDNode] | None = None, variables: str = "") -> str:
    """A runbook whose target `nodes` lists `nodes` or, without them, reads the cluster file `{{ cluster }}` as
    ha-rollback does; `steps` and `variables` are YAML blocks indented by two spaces."""
    if nodes is None:
        variables = "  cluster: {type: string, required: true}\n" + variables
        ssh = _FROM_CLUSTER_FILE
    else:
        ssh = f"      hosts: [{', '.join(f'{n.user}@{n.address}:{n.port}' for n in nodes)}]\n"
    head = f'runbook: 1\nname: {name}\nversion: "1.0"\ntitle: End to end {name}\n'
    if variables:
        head += f"variables:\n{variables}"
    return f"{head}targets:\n  nodes:\n    ssh:\n{ssh}    concurrency: 4\nsteps:\n{steps}"


# -- what a run left behind ----------------------------------------------------------------------------------


def run_dirs(state: Path) -> list[Path]:
    """The directories of the runs in `state` that have a journal, oldest first."""
    return sorted(p.parent for p in state.glob("runs/*/journal.jsonl"))


def journal_path(state: Path) -> Path:
    """The journal of the one run in `state`."""
    [directory] = run_dirs(state)
    return directory / "journal.jsonl"


def journal(state: Path) -> list[Record]:
    """The committed records of the one run in `state` (a torn last line left out)."""
    lines = journal_path(state).read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[:-1] if line]


def fold(records: Iterable[Record]) -> dict[tuple[str, str], str]:
    """(step, host) → its last status: a start without an end is "unknown" (the journal's own rule)."""
    state: dict[tuple[str, str], str] = {}
    for record in records:
        key = (str(record.get("step")), str(record.get("host")))
        if record.get("type") == "step-start":
            state[key] = "unknown"
        elif record.get("type") == "step-end":
            state[key] = str(record["status"])
    return state


def ends(records: Iterable[Record], status: str = "ok") -> Counter[tuple[str, str]]:
    """How many `step-end` records with `status` each (step, host) has."""
    return Counter(
        (str(r["step"]), str(r["host"]))
        for r in records
        if r.get("type") == "step-end" and r.get("status") == status
    )


def kinds(records: Iterable[Record]) -> list[str]:
    """The type of each record."""
    return [str(r["type"]) for r in records]


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


def output_lines(state: Path, step: str, host: str) -> list[str]:
    """The full output file of `step` on `host` of the one run in `state`: `<time> [stream] <line>` lines."""
    [path] = state.glob(f"runs/*/{step}@{host}.log")
    return path.read_text().splitlines()
