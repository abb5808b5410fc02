"""engine/judging.py: what an attempt's `Result` means, as a pure function; no command runs here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import JournalError
from engine.executors import Result
from engine.judging import broken_off, judge, judge_step
from engine.loading import Mark
from engine.model import Expect, Step, Template
from engine.outcomes import HostOutcome, Status

STEP = Step(0, "check", "Check")
DONE = Result("check", "a", 0, "ready: 3 nodes\n", "", 0.1)


def until(text: str) -> Step:
    return replace(STEP, until=Template(text, ("steps", 0, "until"), Mark(1, 1)))


@pytest.mark.parametrize(
    ("step", "result", "status", "reason"),
    [
        (STEP, DONE, Status.OK, ""),
        (STEP, replace(DONE, exit_code=3), Status.FAILED, ""),
        (replace(STEP, expect=Expect(exit_codes=(0, 3))), replace(DONE, exit_code=3), Status.OK, ""),
        (STEP, replace(DONE, exit_code=None, timed_out=True), Status.TIMED_OUT, "killed after 5s"),
        (STEP, replace(DONE, exit_code=None, interrupted=True), Status.INTERRUPTED, "interrupted"),
        (STEP, replace(DONE, not_started="host key changed"), Status.FAILED, "not started: host key changed"),
        (
            STEP,
            replace(DONE, exit_code=None, timed_out=True, connection_lost="EOF"),
            Status.UNKNOWN,
            "timed out after 5s, then lost the connection (EOF): the command may still be running",
        ),
        (
            replace(STEP, expect=Expect(stdout_contains="4 nodes")),
            DONE,
            Status.FAILED,
            "output does not contain '4 nodes'",
        ),
        (
            replace(STEP, expect=Expect(stdout_matches=r"^ready: \d+")),
            DONE,
            Status.OK,
            "",
        ),
        (until("'ready' in result.stdout"), DONE, Status.OK, ""),
        (until("result.stdout | int > 2"), DONE, Status.FAILED, "until result.stdout | int > 2 is false"),
    ],
)
def test_judge_decides_in_order(step: Step, result: Result, status: Status, reason: str) -> None:
    assert judge(step, result, 5.0, {}) == (status, reason)


def test_judge_step_goes_on_within_max_failed_hosts_and_stops_at_an_unknown_host() -> None:
    step = replace(STEP, max_failed_hosts=1)
    outcomes = [HostOutcome("check", "a", Status.OK), HostOutcome("check", "b", Status.FAILED)]
    outcome, note = judge_step("check", step, outcomes)
    assert (outcome.failed_hosts, outcome.stopped) == (("b",), False)
    assert note == "1 host(s) failed, within max_failed_hosts=1: going on without b"
    outcome, _ = judge_step("check", step, [HostOutcome("check", "a", Status.UNKNOWN)])
    assert outcome.stopped


def test_an_attempt_broken_off_is_unknown_and_ctrl_c_is_an_interrupt() -> None:
    error = JournalError("cannot write output file x.log: No space left on device")
    assert broken_off(error) == (
        Status.UNKNOWN,
        "broken off by an error: cannot write output file x.log: No space left on device",
    )
    assert broken_off(KeyboardInterrupt()) == (Status.INTERRUPTED, "interrupted")
