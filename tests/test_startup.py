"""`runbook validate` must stay fast: it never imports SSH (paramiko, ~0.2 s), the terminal UI (rich) or the
CLI framework (invoke, which pulls in unittest.mock and importlib.metadata: the `runbook` parser is argparse,
generated from the same option fields as the invoke tasks — tests/test_cli_flags.py compares them)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """\
import sys
from engine.cli import main
try:
    main(["runbook", *sys.argv[1:]])  # the console script, in-process
except SystemExit as done:
    assert not done.code, done.code
heavy = sorted(
    m
    for m in (
        "paramiko", "rich", "cryptography", "invoke", "unittest.mock", "engine.executors", "subprocess", "difflib"
    )
    if m in sys.modules
)
print("heavy:", ",".join(heavy))
"""


def test_validate_imports_neither_ssh_nor_the_terminal_ui_nor_what_only_runs_read() -> None:
    """Nor does it read a journal, plan, or ask anybody: the records' reading types, the run history, resume,
    approvals, the state backends and the planner stay unimported (their frozen dataclasses alone cost
    ~0.5 ms each to create)."""
    later = ("engine.records", "engine.history", "engine.resume", "engine.approvals", "engine.state")
    probe = PROBE.replace(
        '"paramiko", ', "".join(f'"{m}", ' for m in (*later, "engine.planning", "paramiko"))
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "validate", "runbooks/ha-rollback.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].strip() == "heavy:"


SSH_RUNBOOK = """\
runbook: 1
name: ssh-hosts
version: "1"
title: SSH hosts
targets:
  web:
    ssh:
      hosts: [deploy@10.1.0.5:2222, 10.1.0.6]
      key_file: keys/deploy
      agent: no
      jump:
        - host: bastion.example.com
          user: ops
steps:
  - id: greet
    title: Greet
    on: web
    run: echo hello
"""


def test_plan_of_ssh_hosts_imports_no_executor(tmp_path: Path) -> None:
    """How a host is reached is plain values (`engine.transports`): planning one runs and connects nothing,
    so it imports neither the executors package nor subprocess, let alone paramiko."""
    book = tmp_path / "ssh.yml"
    book.write_text(SSH_RUNBOOK)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "plan", str(book)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "via ops@bastion.example.com" in result.stdout  # the plan did say how each host is reached
    assert result.stdout.splitlines()[-1].strip() == "heavy:"


def test_plan_shows_what_ssh_config_resolves_without_importing_invoke(tmp_path: Path) -> None:
    """With a ~/.ssh/config, `plan` shows where it sends each host, which takes paramiko; paramiko's own
    `import invoke` (for a `Match exec`, ~30 ms) waits until a config has one."""
    book = tmp_path / "ssh.yml"
    book.write_text(SSH_RUNBOOK)
    home = Path(os.environ["HOME"])
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "config").write_text("Host 10.1.0.6\n  User fromconfig\n")
    probe = PROBE.replace('"invoke", ', '"invoke.tasks", ')
    result = subprocess.run(
        [sys.executable, "-c", probe, "plan", str(book)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "with ~/.ssh/config: fromconfig@10.1.0.6:22" in result.stdout
    heavy = result.stdout.splitlines()[-1].removeprefix("heavy:").strip().split(",")
    assert "paramiko" in heavy
    assert "invoke.tasks" not in heavy and "unittest.mock" not in heavy


def test_help_shows_the_runbook_options_with_their_placeholders_and_none_of_invokes() -> None:
    def help_of(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "engine", *args, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    top, run = help_of(), help_of("run")
    for text in (top, run):
        for invoke_only in ("--prompt-for-sudo-password", "--pty", "--write-pyc", "--echo", "--complete"):
            assert invoke_only not in text
    assert all(name in top for name in ("validate", "plan", "checklist", "run", "runs", "demo"))
    for flag in (
        "--var NAME=VALUE",
        "--hosts TARGET=HOSTS",
        "--vars-file FILE",
        "--resume [RUN_ID]",
        "--yes",
    ):
        assert flag in run
    assert "-o FILE, --output FILE" in help_of("checklist")


SSH_PROBE = """\
import sys
from engine.executors import resolve_ssh_target, ssh_executor
from engine.transports import SSHOptions, SSHTarget
ssh_executor(SSHTarget("node", "127.0.0.1", user="ops", port=22))
print("paramiko:", "paramiko" in sys.modules, "invoke loaded:", "invoke.tasks" in sys.modules)
resolved = resolve_ssh_target(SSHTarget("node"), SSHOptions(ssh_config=sys.argv[1]))
print("user:", resolved.user, "invoke loaded:", "invoke.tasks" in sys.modules)
"""


def test_ssh_does_not_import_invoke_until_an_ssh_config_runs_match_exec(tmp_path: Path) -> None:
    """paramiko imports invoke for `Match exec`; `runbook run` pays for that only when a config has one."""
    config = tmp_path / "ssh_config"
    config.write_text('Match exec "test -n runbook"\n  User matched\n')
    result = subprocess.run(
        [sys.executable, "-c", SSH_PROBE, str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "paramiko: True invoke loaded: False",
        "user: matched invoke loaded: True",
    ]


RUN_PROBE = """\
import sys
from engine.cli import main
try:
    main(["runbook", "run", sys.argv[1], "--yes", "--state-dir", sys.argv[2]])
except SystemExit as done:
    assert not done.code, done.code
heavy = sorted(
    m
    for m in (
        "rich", "paramiko", "invoke", "engine.executors.ssh", "engine.reviewing", "difflib", "psycopg",
        "engine.state.postgres", "engine.resume", "engine.history", "engine.approvals.waiting",
        "engine.approvals.desk", "engine.takeover", "socket",
    )
    if m in sys.modules
)
print("heavy:", ",".join(heavy))
"""

LOCAL_RUNBOOK = """\
runbook: 1
name: local-only
version: "1"
title: Local only
targets:
  here: {local: true}
steps:
  - id: greet
    title: Greet
    on: here
    run: echo hello
"""


def test_a_local_run_into_a_pipe_imports_neither_ssh_nor_the_terminal_ui(tmp_path: Path) -> None:
    """rich only draws on a terminal (a pipe gets the same text without it), paramiko only connects to SSH
    hosts, a saved plan's checker only loads for `--plan`, the PostgreSQL state (psycopg) only for a
    `RUNBOOK_STATE` that names a database, resume with the run history it folds only for `--resume`, the
    approvals desk and gate only for a run with a step that asks for one, the take-over question only for
    `--take-over`; and socket not at all (the journal and the lock name this machine from uname)."""
    book = tmp_path / "local.yml"
    book.write_text(LOCAL_RUNBOOK)
    result = subprocess.run(
        [sys.executable, "-c", RUN_PROBE, str(book), str(tmp_path / "state")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "local | hello" in result.stdout
    assert result.stdout.splitlines()[-1].strip() == "heavy:"


def test_invoke_compiles_a_checkouts_engine_so_commands_start_from_bytecode(tmp_path: Path) -> None:
    """With PYTHONDONTWRITEBYTECODE=1 Python never writes engine/'s bytecode; tasks.py writes it, so neither
    `invoke` nor a later `runbook` compiles the engine from source again."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "engine", checkout / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "schemas", checkout / "schemas")  # engine/runbook-v1.schema.json links there
    shutil.copy(ROOT / "tasks.py", checkout)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONDONTWRITEBYTECODE": "1"}

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
        )

    listed = python("-m", "invoke", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "run" in listed.stdout.split()
    sources = sorted(p.relative_to(checkout) for p in (checkout / "engine").rglob("*.py"))
    assert sources and all(
        Path(importlib.util.cache_from_source(str(checkout / s))).exists() for s in sources
    )
    # `python -v` names where each module's code came from: the bytecode, not the source
    started = python("-v", "-c", "import engine.cli, engine.commands.run")
    assert started.returncode == 0, started.stderr
    lines = started.stderr.splitlines()
    from_source = [line for line in lines if line.startswith(f"# code object from {checkout}")]
    from_bytecode = [line for line in lines if line.startswith(f"# code object from '{checkout}")]
    assert not from_source, from_source[:3]
    assert any("/engine/commands/__pycache__/run." in line for line in from_bytecode)
