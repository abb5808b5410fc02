"""A lab for the end-to-end tests of `run`: an operator's HOME that reaches sshd nodes, a state directory,
runbooks written on the fly, blocking stand-ins on the nodes, and `python -m engine …` as a real subprocess.

Everything here is bounded: every wait has a deadline, every subprocess a timeout (it is killed past it).
Standalone apart from `sshd` (no pytest), like `sshd.py`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sshd import SSHDNode

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 45.0

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
    (node.home / f"{name}.block").unlink(missing_ok=True)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll `condition` every 20 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def host_spec(node: SSHDNode) -> str:
    return f"{node.user}@{node.address}:{node.port}"


def nodes_runbook(name: str, nodes: Sequence[SSHDNode], steps: str, variables: str = "") -> str:
    """A runbook whose target `nodes` lists `nodes`; `steps` and `variables` are YAML blocks (2-space indented)."""
    hosts = ", ".join(host_spec(n) for n in nodes)
    return (f"runbook: 1\nname: {name}\nversion: \"1.0\"\ntitle: End to end {name}\n"
            f"{'variables:' + chr(10) + variables if variables else ''}"
            f"targets:\n  nodes:\n    ssh:\n      hosts: [{hosts}]\n    concurrency: 4\n"
            f"steps:\n{steps}")


@dataclass
class Lab:
    """One operator: a HOME whose ~/.ssh reaches the nodes, a working directory and a state directory."""

    root: Path
    nodes: Sequence[SSHDNode]
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "operator"
        self.state = self.root / "state"
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700, exist_ok=True)
        (ssh / "known_hosts").write_text("".join(f"{n.known_hosts_name} {n.host_public_key}\n" for n in self.nodes))
        if self.nodes:
            (ssh / "config").write_text(f"Host *\n  IdentityFile {self.nodes[0].client_key}\n")

    @property
    def book(self) -> Path:
        """Where `write` puts a runbook by default."""
        return self.root / "book.yml"

    def write(self, text: str, name: str = "book.yml") -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        drop = ("SSH_AUTH_SOCK", "RUNBOOK_STATE_DIR", "COLUMNS")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RUNBOOK_VAR_")}
        env.update(HOME=str(self.home), PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1", TERM="dumb")
        env.update(self.extra_env)
        env.update(extra)
        return env

    def argv(self, task: str, *args: str | os.PathLike[str]) -> list[str]:
        state = ["--state-dir", str(self.state)]
        return [sys.executable, "-m", "engine", task, *(str(a) for a in args), *state]

    def run(self, *args: str | os.PathLike[str], stdin: str = "", task: str = "run",
            env: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`python -m engine TASK ARGS --state-dir STATE` to its end, `stdin` piped in (empty: end of input)."""
        return subprocess.run(self.argv(task, *args), cwd=self.root, env=self.env(**(env or {})), input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Running:
        process = subprocess.Popen(self.argv("run", *args), cwd=self.root, env=self.env(**(env or {})),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        return Running(process)

    def run_dirs(self) -> list[Path]:
        return sorted(p.parent for p in self.state.glob("runs/*/journal.jsonl"))

    def journal_path(self) -> Path:
        [directory] = self.run_dirs()
        return directory / "journal.jsonl"

    def records(self) -> list[dict[str, object]]:
        """The committed records of the one run in the state directory (a torn last line left out)."""
        lines = self.journal_path().read_bytes().split(b"\n")
        return [json.loads(line) for line in lines[:-1] if line]


@dataclass
class Running:
    """A `run` in the background, to be signalled; `finish()` collects its exit code and output (bounded)."""

    process: subprocess.Popen[str]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"the run did not end within {timeout}s:\n{out}\n{err}") from None
        return self.process.returncode, out, err

    def kill(self) -> tuple[int, str, str]:
        return self.stop(signal.SIGKILL)

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.signal(signum)
        return self.finish()


def fold(records: Iterable[dict[str, object]]) -> dict[tuple[str, str], str]:
    """(step, host) → its last status: a start without an end is "unknown" (the journal's own rule)."""
    state: dict[tuple[str, str], str] = {}
    for record in records:
        key = (str(record.get("step")), str(record.get("host")))
        if record.get("type") == "step-start":
            state[key] = "unknown"
        elif record.get("type") == "step-end":
            state[key] = str(record["status"])
    return state


def ends(records: Iterable[dict[str, object]], status: str = "ok") -> Counter[tuple[str, str]]:
    """How many `step-end` records with `status` each (step, host) has."""
    return Counter((str(r["step"]), str(r["host"])) for r in records
                   if r.get("type") == "step-end" and r.get("status") == status)


def kinds(records: Iterable[dict[str, object]]) -> list[str]:
    return [str(r["type"]) for r in records]


def calls(node: SSHDNode, name: str) -> list[list[str]]:
    """The argv of each recorded call of `name` on `node`, oldest first."""
    return [list(c["argv"]) for c in node.calls(name)]  # type: ignore[call-overload]
