"""Prompts under a real pseudo-terminal (pexpect): a wrong answer is explained and asked again.

`runbook run` asks for missing required values only when a person is at a terminal, so these tests give
it one. Every expectation waits at most WAIT seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

RUNBOOK = Path(sys.executable).with_name("runbook")
WAIT = 30
BOOK = """\
runbook: 1
name: restore
version: "1.0"
title: Restore a snapshot
variables:
  snapshot:
    description: Name of the etcd snapshot (without .zip)
    type: string
    pattern: '^(?!.*\\\\.zip$)[a-z0-9-]+$'
    required: true
    examples: [snap-1]
  count:
    description: How many nodes to restore
    type: integer
    minimum: 1
    required: true
steps:
  - id: restore
    title: Restore
    confirm:
      type: "{{ snapshot }}"
      question: This overwrites the cluster state.
    run: echo restoring {{ snapshot }} on {{ count }} > restored.txt
  - id: after
    title: After
    run: echo after
"""


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    (tmp_path / "restore.yml").write_text(BOOK, encoding="utf-8")
    return tmp_path


def spawn(lab: Path) -> pexpect.spawn:
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", "restore.yml", "--state-dir", str(lab / "state")],
        cwd=str(lab),
        timeout=WAIT,
        encoding="utf-8",
        dimensions=(40, 200),
    )
    child.logfile_read = open(lab / "screen.txt", "w", encoding="utf-8")  # noqa: SIM115 (closed by pexpect)
    return child


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None
    return child.exitstatus


def screen(lab: Path) -> str:
    return (lab / "screen.txt").read_text(encoding="utf-8")


def test_a_wrong_value_is_explained_and_asked_again_and_the_run_goes_on(lab: Path) -> None:
    child = spawn(lab)
    child.expect_exact("snapshot (Name of the etcd snapshot (without .zip)) [e.g. snap-1]: ")
    child.sendline("snap.zip")
    child.expect_exact(
        "'snap.zip' is not valid: it does not have the form this value needs. Wanted: Name of the etcd "
        "snapshot (without .zip) (e.g. snap-1); try again (2 more)"
    )
    child.expect_exact("snapshot (Name of the etcd snapshot (without .zip)) [e.g. snap-1]: ")
    child.sendline("snap-1")
    child.expect_exact("count (How many nodes to restore) [a whole number]: ")
    child.sendline("zero")
    child.expect_exact("'zero' is not valid: it cannot be read as integer: expected an integer.")
    child.sendline("0")
    child.expect_exact("'0' is not valid: it must be at least 1.")
    child.sendline("3")
    # a typed confirmation with a typo is asked again, not taken as a no
    child.expect_exact("Type 'snap-1' to go on (Enter to decline):")
    child.sendline("snap-2")
    child.expect_exact("'snap-2' is not 'snap-1'; type it exactly (2 more), or press Enter to decline")
    child.expect_exact("Type 'snap-1' to go on (Enter to decline):")
    child.sendline("snap-1")
    assert finish(child) == 0, screen(lab)
    assert (lab / "restored.txt").read_text() == "restoring snap-1 on 3\n"
    assert "run finished: every step succeeded" in screen(lab)
    assert "does not match the pattern" not in screen(lab)


def test_enter_declines_the_typed_confirmation_and_no_empty_table_is_drawn(lab: Path) -> None:
    child = spawn(lab)
    child.expect_exact("snapshot (")
    child.sendline("snap-1")
    child.expect_exact("count (")
    child.sendline("2")
    child.expect_exact("Type 'snap-1' to go on (Enter to decline):")
    child.sendline("")
    assert finish(child) == 1, screen(lab)
    assert "step 'restore' was declined" in screen(lab)
    assert "Summary" not in screen(lab)
    assert not (lab / "restored.txt").exists()


def test_three_wrong_values_end_the_run_before_anything_ran(lab: Path) -> None:
    child = spawn(lab)
    for _ in range(3):
        child.expect_exact("snapshot (")
        child.sendline("Bad Name")
    child.expect_exact("count (")
    child.sendline("1")
    assert finish(child) == 2, screen(lab)
    assert "prompt: snapshot:" in screen(lab)
    assert not (lab / "state").exists()


@pytest.mark.parametrize(("key", "said"), [("\x04", "end of input"), ("\x03", "interrupted")])
def test_ctrl_d_or_ctrl_c_at_a_prompt_leaves_cleanly_with_nothing_run(lab: Path, key: str, said: str) -> None:
    child = spawn(lab)
    child.expect_exact("snapshot (")
    child.send(key)
    assert finish(child) == 130, screen(lab)
    assert said in screen(lab)
    assert "Traceback" not in screen(lab)
    assert not (lab / "state").exists()
    assert not (lab / "restored.txt").exists()


RULED = """\
runbook: 1
name: scale
version: "1.0"
title: Scale
variables:
  replicas: {type: integer, default: 5}
  token: {description: API token, secret: true, required: true}
rules:
  - assert: replicas <= 3
    message: "at most 3 replicas, not {{ replicas }}"
  - assert: token | length > 3
    message: the token is too short
steps:
  - id: scale
    title: Scale
    run: echo scaling
"""


def test_a_rule_broken_by_the_values_given_is_said_before_a_secret_is_asked(tmp_path: Path) -> None:
    """Issue 23: nobody types a secret for a run its rules refuse anyway."""
    (tmp_path / "restore.yml").write_text(RULED, encoding="utf-8")
    child = spawn(tmp_path)
    assert finish(child) == 2
    said = screen(tmp_path)
    assert "at most 3 replicas, not 5" in said and "token (API token)" not in said


TYPED_AGAIN = """\
runbook: 1
name: scale
version: "1.0"
title: Scale
variables:
  replicas: {description: How many, type: integer, required: true}
rules:
  - assert: replicas <= 3
    message: "at most 3 replicas, not {{ replicas }}"
steps:
  - id: scale
    title: Scale
    run: echo scaling to {{ replicas }}
"""


def test_a_typed_value_a_rule_refuses_is_asked_again(tmp_path: Path) -> None:
    """Issue 23: a value error at the terminal re-asks (three tries in all) instead of ending the run."""
    (tmp_path / "restore.yml").write_text(TYPED_AGAIN, encoding="utf-8")
    child = spawn(tmp_path)
    child.expect_exact("replicas (How many) [a whole number]: ")
    child.sendline("5")
    child.expect_exact("at most 3 replicas, not 5; type the values again (2 more)")
    child.expect_exact("replicas (How many) [a whole number]: ")
    child.sendline("2")
    child.expect_exact("scaling to 2")
    assert finish(child) == 0
