"""What a run says, as people read it (issue 23, bug 7): no doubled counts, statuses in words, an interrupt
while waiting to try again is an interrupt, and Ctrl-C at a question ends its line."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from runbooks import Lab, journal, summary_rows, wait_for, write_runbook


def book(lab: Lab, steps: str) -> Path:
    text = f'runbook: 1\nname: wording\nversion: "1"\ntitle: Wording\nsteps:\n{steps}'
    return write_runbook(lab.root.parent, text)


def ends(lab: Lab) -> str:
    """The journal's text so far (empty before it exists)."""
    found = list(lab.state.glob("runs/*/journal.jsonl"))
    return found[0].read_text() if found else ""


def test_the_attempts_are_counted_once(lab: Lab) -> None:
    steps = "  - id: flaky\n    title: Flaky\n    retries: {count: 2, delay: 10ms}\n    run: exit 3\n"
    done = lab.run_here(book(lab, steps))
    assert done.returncode == 1
    assert "✗ local: failed exit 3 in " in done.stdout and "s, 3 attempts\n" in done.stdout
    assert "attempt(s)" not in done.stdout


def test_statuses_read_as_words_in_the_summary(lab: Lab) -> None:
    steps = "  - id: slow\n    title: Slow\n    timeout: 100ms\n    run: sleep 5\n"
    done = lab.run_here(book(lab, steps))
    assert summary_rows(done.stdout) == [("slow", "local", "timed out")]
    assert "local: timed out in" in done.stdout
    assert [r["status"] for r in journal(lab.state) if r["type"] == "step-end"] == [
        "timed_out"
    ]  # the journal's


def test_ctrl_c_while_waiting_to_try_again_is_an_interrupt(lab: Lab) -> None:
    steps = (
        "  - id: wait\n    title: Wait until ready\n    retries: {count: 5, delay: 1h}\n"
        "    run: touch tried; exit 1\n"
        "  - id: after\n    title: After\n    run: touch after\n"
    )
    running = lab.start(book(lab, steps))
    try:
        wait_for(lambda: (lab.root / "tried").exists(), "the first attempt", timeout=20)
        wait_for(lambda: "step-end" in ends(lab), "the first attempt's end", timeout=20)
    finally:
        code, out, err = running.stop(signal.SIGINT, timeout=10)
    assert code == 130, out + err
    assert summary_rows(out) == [("wait", "local", "interrupted")]
    assert "interrupted while waiting to try again, after attempt 1 failed" in " ".join(out.split())
    assert not (lab.root / "after").exists()


def _at_a_terminal(lab: Lab, steps: str) -> Any:
    import pexpect

    return pexpect.spawn(
        str(Path(sys.executable).with_name("runbook")),
        ["run", str(book(lab, steps)), "--state-dir", str(lab.state)],
        cwd=str(lab.root),
        timeout=30,
        encoding="utf-8",
        dimensions=(40, 200),
    )


def test_ctrl_c_at_a_question_ends_its_line(lab: Lab) -> None:
    """Whatever the terminal echoes for Ctrl-C (^C, or nothing under line editing), what follows starts on
    a line of its own, never glued to the question."""
    import pexpect

    child = _at_a_terminal(lab, "  - id: a\n    title: A\n    confirm: true\n    run: touch a-ran\n")
    child.expect_exact("[y/N] ")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert re.match(r"(\^C|\x1b\[[0-9;]*m)*\r\n", child.before), repr(child.before[:80])
    assert not (lab.root / "a-ran").exists()


def test_an_answer_is_typed_with_line_editing(lab: Lab) -> None:
    """Issue 23: at a terminal an answer is edited in place (arrows, Ctrl-A/E): `xy`, ←, Backspace is `y`."""
    import pexpect

    child = _at_a_terminal(lab, "  - id: a\n    title: A\n    confirm: true\n    run: touch a-ran\n")
    child.expect_exact("[y/N] ")
    child.send("xy\x1b[D\x7f\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (lab.root / "a-ran").exists()


NEW_RUN_NOTE = "did not finish"


@pytest.mark.parametrize(
    ("extra", "stdin", "code"),
    [
        ("warnings: [This restarts the service.]\n", "n\n", 1),  # declined at the warnings
        ("checks:\n  - title: Ready\n    run: exit 1\n", "", 3),  # preflight failed
    ],
)
def test_a_run_that_never_started_leaves_no_note_behind(lab: Lab, extra: str, stdin: str, code: int) -> None:
    steps = "  - id: a\n    title: A\n    run: touch a-ran\n"
    text = f'runbook: 1\nname: wording\nversion: "1"\ntitle: Wording\n{extra}steps:\n{steps}'
    path = write_runbook(lab.root.parent, text)
    first = lab.run_here(path, stdin=stdin)
    assert first.returncode == code, first.stdout + first.stderr
    assert "--resume" not in first.stdout
    again = lab.run_here(path, stdin=stdin)
    assert NEW_RUN_NOTE not in again.stdout + again.stderr
    assert not (lab.root / "a-ran").exists()


def test_a_run_that_ran_a_step_is_noted_by_the_next(lab: Lab) -> None:
    path = book(lab, "  - id: a\n    title: A\n    run: test -e fixed\n")
    assert lab.run_here(path).returncode == 1
    again = lab.run_here(path)
    assert NEW_RUN_NOTE in again.stdout and "To continue that one instead: --resume" in again.stdout
