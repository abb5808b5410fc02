"""Secrets, end to end: a command on an sshd node that does its best to leak them, and nothing does.

The node echoes the secret to stdout and stderr, base64-encodes it (a long one, so `base64` wraps it) and
prints a multi-line one line by line, then sleeps while the test reads `ps`. The nodes listen on 127.0.0.x
of this machine, so `ps` here is `ps` on the node (and shows this engine's own argument list too).
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from runbooks import (
    Lab,
    Nodes,
    block,
    blocking_stand_in,
    calls,
    command_lines,
    journal,
    nodes_runbook,
    operator_lab,
    run_dirs,
    unblock,
    wait_for,
)

pytestmark = pytest.mark.ssh

# Long enough that `base64` wraps its encoding over two lines; no "*" (the mask's own character).
TOKEN = "correct-horse-battery-staple/Tr0ub4dor&3+and-a-long-tail-of-entropy-9f2c7e1ab4"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDk3yQv0VmP1mYk1vJQ2Zr8uC0bBk2sXyD5oWQq3xkV7gAAAJiA5eGXgOXh\n"
    "-----END OPENSSH PRIVATE KEY-----"
)

TOKEN_ENV = {"RUNBOOK_VAR_TOKEN": TOKEN}  # the one way in besides a vars file: never --var (see below)

VARIABLES = """\
  token: {type: string, secret: true, required: true}
  key: {type: string, secret: true, required: true}
  release: {type: string, default: "2.0"}
"""
LEAKY = """\
  - id: leak
    title: Try every way to show the secrets
    on: nodes
    run: |
      echo "token={{ token }}"
      echo {{ token }} >&2
      printf %s {{ token }} | base64
      echo {{ token }} | base64
      printf %s {{ key }} | base64
      printf '%s\\n' {{ key }}
      printf '%s\\n' {{ key }} >&2
      printf %s {{ token }} | sha256sum | cut -c1-64 > "$HOME/token.sha256"
      sleep 1
      echo done
"""


def forms(secret: str) -> set[str]:
    """What must never show: the secret, its lines, and its encodings (whole, and as `base64` wraps them)."""
    found = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    found |= {line for line in secret.splitlines() if len(line) >= 8}
    for data in (secret.encode(), secret.encode() + b"\n"):
        encoded = base64.b64encode(data).decode()
        found |= {encoded, encoded.replace("+", "-").replace("/", "_")}
        found |= {line for line in base64.encodebytes(data).decode().splitlines() if len(line) >= 8}
    return found


def leaks(text: str) -> list[str]:
    return sorted(form[:24] + "…" for secret in (TOKEN, KEY) for form in forms(secret) if form in text)


def files_with_leaks(directory: Path) -> dict[str, list[str]]:
    found = {}
    for path in directory.rglob("*"):
        if path.is_file() and (hits := leaks(path.read_bytes().decode("utf-8", "replace"))):
            found[str(path)] = hits
    return found


def ps_while(process: subprocess.Popen[str], every: float = 0.05) -> Iterator[str]:
    """`ps -eww -o args` (every process, whole command lines), again and again until `process` ends."""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        yield command_lines()
        time.sleep(every)


@pytest.fixture
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Lab:
    lab = operator_lab(tmp_path / "lab", home, sshd_nodes(1))
    (lab.root / "secrets.yml").write_text(json.dumps({"key": KEY}))
    return lab


def test_a_secret_shows_nowhere_not_in_output_state_or_ps(lab: Lab) -> None:
    [node] = lab.nodes
    lab.write(nodes_runbook("secrets", LEAKY, [node], VARIABLES))
    running = lab.start(lab.book, "--yes", "--vars-file", lab.root / "secrets.yml", env=TOKEN_ENV)
    snapshots = list(ps_while(running.process))
    code, out, err = running.finish()
    assert code == 0, out + err

    # It ran, with the real values: the node got the token (its hash proves it) and printed masks instead.
    assert (node.home / "token.sha256").read_text().strip() == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert "********" in out and "done" in out
    assert leaks(out + err) == []
    assert files_with_leaks(lab.state) == {}
    [run] = run_dirs(lab.state)
    assert (run / "leak@127.0.0.2.log").read_text().count("********") >= 6
    header = journal(lab.state)[0]
    assert header["variables"] == {"token": "********", "key": "********", "release": "2.0"}

    # `ps` saw the command while it ran (the script refers to the secret by name), never the value.
    assert any("RUNBOOK_SECRET_TOKEN" in snapshot and "sleep 1" in snapshot for snapshot in snapshots)
    assert [leaks(snapshot) for snapshot in snapshots if leaks(snapshot)] == []


def test_a_secret_on_the_command_line_is_refused(lab: Lab) -> None:
    [node] = lab.nodes
    lab.write(nodes_runbook("secrets", LEAKY, [node], VARIABLES))
    result = lab.run_here(
        lab.book, "--yes", "--var", f"token={TOKEN}", "--vars-file", lab.root / "secrets.yml"
    )
    assert result.returncode == 2
    assert "command line: --var token: a secret on the command line is visible" in result.stderr
    assert "RUNBOOK_VAR_TOKEN" in result.stderr and "--vars-file" in result.stderr
    assert leaks(result.stdout + result.stderr) == []
    assert run_dirs(lab.state) == []  # refused before a run began


def test_resume_asks_for_secrets_again_and_takes_values_from_the_journal(lab: Lab) -> None:
    [node] = lab.nodes
    steps = """\
  - id: fetch
    title: Fetch the release
    on: nodes
    run: docker pull app:{{ release }}
  - id: login
    title: Log in with the token
    on: nodes
    run: slow login && printf %s {{ token }} | sha256sum | cut -c1-64 > "$HOME/token.sha256"
  - id: deploy
    title: Deploy the release
    on: nodes
    run: docker run app:{{ release }}
"""
    node.stand_in("docker")
    blocking_stand_in(node, "slow")
    lab.write(nodes_runbook("secret-resume", steps, [node], VARIABLES))
    started = block(node, "slow")
    running = lab.start(
        lab.book, "--yes", "--var", "release=3.1", "--vars-file", lab.root / "secrets.yml", env=TOKEN_ENV
    )
    wait_for(started.exists, "`slow login` to start")
    running.stop(signal.SIGKILL)
    unblock(node, "slow")

    # The journal kept `release`, not the secrets: without them the resume cannot start.
    records = journal(lab.state)
    assert records[0]["variables"] == {"token": "********", "key": "********", "release": "3.1"}
    missing = lab.run_here(lab.book, "--resume", "--yes", "--rerun-unknown")
    assert missing.returncode == 2
    assert "required variable 'token'" in missing.stderr and "required variable 'key'" in missing.stderr
    assert len(journal(lab.state)) == len(records)

    resumed = lab.run_here(
        lab.book,
        "--resume",
        "--yes",
        "--rerun-unknown",
        "--vars-file",
        lab.root / "secrets.yml",
        env=TOKEN_ENV,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert calls(node, "docker") == [["docker", "pull", "app:3.1"], ["docker", "run", "app:3.1"]]
    assert (node.home / "token.sha256").read_text().strip() == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert leaks(resumed.stdout + resumed.stderr) == [] and files_with_leaks(lab.state) == {}


def test_a_secret_default_stays_out_of_the_run_directory_and_the_resume_diff(lab: Lab) -> None:
    [node] = lab.nodes
    node.stand_in("docker", exit_code=1)
    old, new = "default-secret-1234", "default-secret-5678"
    variables = f"  token: {{type: string, secret: true, default: {old}}}\n"
    steps = "  - id: login\n    title: Log in\n    on: nodes\n    run: docker login --password-stdin {{ token }}\n"
    lab.write(nodes_runbook("secret-default", steps, [node], variables))
    failed = lab.run_here(lab.book, "--yes")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert not [p for p in lab.state.rglob("*") if p.is_file() and old.encode() in p.read_bytes()]
    snapshot = run_dirs(lab.state)[0] / "runbook.yml"
    assert "token: {type: string, secret: true, default: ********}" in snapshot.read_text()

    lab.book.write_text(lab.book.read_text().replace(old, new).replace("--password-stdin", "-p"))
    refused = lab.run_here(lab.book, "--resume", "--yes")
    assert refused.returncode == 2
    assert (
        "+    run: docker login -p {{ token }}" in refused.stderr
    )  # the change is shown; the defaults are not
    assert old not in refused.stderr and new not in refused.stderr


AS_ARGUMENT = """\
  - id: as-argument
    title: The secret is an argument of a program (ps shows it)
    on: nodes
    run: python3 -c 'import time; time.sleep(1.5)' {{ token }} as-argument
  - id: on-stdin
    title: The secret goes in on standard input (ps shows nothing)
    on: nodes
    run: printf '%s\\n' {{ token }} | python3 -c 'import sys, time; sys.stdin.read(); time.sleep(1.5)' on-stdin
"""


def test_validate_warns_where_a_secret_is_a_programs_argument_and_ps_proves_it(lab: Lab) -> None:
    [node] = lab.nodes
    lab.write(nodes_runbook("secrets", AS_ARGUMENT, [node], VARIABLES))
    checked = lab.run_here(lab.book, task="validate")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    warned = [line for line in checked.stderr.splitlines() if "is an argument of" in line]
    assert (
        len(warned) == 1 and "steps[0].run: warning: secret 'token' is an argument of 'python3'" in warned[0]
    )
    assert "standard input" in warned[0] and "env:" in warned[0]

    # What the warning is about, on a real node: the first step's argument list carries the value.
    running = lab.start(lab.book, "--yes", "--vars-file", lab.root / "secrets.yml", env=TOKEN_ENV)
    snapshots = list(ps_while(running.process))
    code, out, err = running.finish()
    assert code == 0, out + err
    assert any(TOKEN in s for s in snapshots if "as-argument" in s)
    assert not any(TOKEN in s for s in snapshots if "on-stdin" in s and "as-argument" not in s)
    assert any("on-stdin" in s for s in snapshots)
