"""Four eyes under a real pseudo-terminal (pexpect): the waiting run as its operator sees it (who may
approve, the exact command, Ctrl-C leaving it resumable), and `approve`'s typed confirmation (a typo asked
again, the sha256's first characters approve). On files, with a real `ssh-keygen` key; every expectation
waits at most WAIT seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pexpect
from test_prompts_pty import RUNBOOK, WAIT, finish

BOOK = """\
runbook: 1
name: fe
version: "1"
title: Four eyes
steps:
  - id: restore
    title: Restore
    run: touch restored
    approval: {required: 1, from: [bob], allowed_signers: allowed_signers}
"""


def spawn(lab: Path, *args: str, user: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(USER=user, LOGNAME=user, NO_COLOR="1")
    child = pexpect.spawn(
        str(RUNBOOK),
        [*args, "--state-dir", str(lab / "state")],
        cwd=str(lab),
        env=env,
        timeout=WAIT,
        encoding="utf-8",
        dimensions=(40, 200),
    )
    child.logfile_read = open(lab / f"screen-{args[0]}.txt", "a", encoding="utf-8")  # noqa: SIM115
    return child


def test_the_waiting_run_and_the_typed_approval_at_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "fe.yml").write_text(BOOK, encoding="utf-8")
    key = tmp_path / "bob_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    (tmp_path / "allowed_signers").write_text(f"bob {public}\n")

    waiting = spawn(tmp_path, "run", "fe.yml", "--yes", user="alice")
    waiting.expect_exact("APPROVAL NEEDED: 1 approval(s) by members of bob other than alice")
    waiting.expect(r"to approve, on another workstation: runbook approve (\S+) restore")
    run_id = waiting.match.group(1)
    waiting.expect_exact("waiting… (Ctrl-C stops the run, resumable")
    waiting.sendintr()
    assert finish(waiting) == 130
    assert f"resume with: --resume {run_id}" in (tmp_path / "screen-run.txt").read_text()

    approving = spawn(tmp_path, "approve", run_id, "restore", "--key", str(key), user="bob")
    approving.expect(r"document sha256 ([0-9a-f]{64})")
    sha = approving.match.group(1)
    approving.expect_exact(f"Type '{sha[:8]}' (the sha256's first 8 characters) to approve, Enter to stop:")
    approving.sendline("deadbeef")
    approving.expect_exact(f"'deadbeef' is not '{sha[:8]}'")
    approving.expect_exact("to approve, Enter to stop:")
    approving.sendline(sha[:8])
    approving.expect_exact("approved by bob at")
    assert finish(approving) == 0
    screen = (tmp_path / "screen-approve.txt").read_text()
    assert '"commands"' in screen and "touch restored" in screen  # the approver saw what will run

    resumed = spawn(tmp_path, "run", "fe.yml", "--yes", "--resume", run_id, user="alice")
    resumed.expect_exact("approved by bob: going on")
    assert finish(resumed) == 0
    assert (tmp_path / "restored").exists()
    assert re.search(r"ssh signature \S+\.sig by bob", (tmp_path / "screen-run.txt").read_text())
