"""What one attempt's `Result` means: its `Status`, and why (the reason shown and journaled).

A pure function beside the status type, as nox keeps what a session does (`SessionRunner.execute`) apart
from how its ending becomes a `Status`: the runner executes, `judge` decides, so every rule of what counts
as ok is here, in the order it applies, and is testable without running anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from engine.attempts import until_holds
from engine.errors import Interrupted
from engine.executors import Result
from engine.model import Step
from engine.outcomes import HostOutcome, Status, StepOutcome


def judge(
    step: Step, result: Result, timeout: float | None, context: Mapping[str, Any]
) -> tuple[Status, str]:
    """The status of `result` as an attempt of `step` (run with `timeout`), and the reason if not ok.

    `context` is what the step's `until` reads besides the result (unused without an `until`). A lost
    connection is unknown, not failed: the command may have had its effect, or may still be running."""
    expect = step.expect
    if result.not_started is not None:
        return Status.FAILED, f"not started: {result.not_started}"
    if result.connection_lost is not None:
        killed = f"timed out after {timeout or 0:g}s, then " if result.timed_out else ""
        lost = f"lost the connection ({result.connection_lost}): the command may still be running"
        return Status.UNKNOWN, killed + lost
    if result.interrupted:
        return Status.INTERRUPTED, "interrupted"
    if result.timed_out:
        return Status.TIMED_OUT, f"killed after {timeout or 0:g}s"
    if result.exit_code not in expect.exit_codes:
        return Status.FAILED, ""
    if expect.stdout_contains is not None and expect.stdout_contains not in result.stdout:
        return Status.FAILED, f"output does not contain {expect.stdout_contains!r}"
    if expect.stdout_matches is not None and not re.search(expect.stdout_matches, result.stdout, re.M):
        return Status.FAILED, f"output does not match {expect.stdout_matches!r}"
    held, why = until_holds(step, context, result)
    return (Status.OK, "") if held else (Status.FAILED, why)


def judge_step(step_id: str, step: Step, outcomes: Sequence[HostOutcome]) -> tuple[StepOutcome, str]:
    """A step's outcome from its hosts', and a note when it goes on despite failed hosts.

    More failed hosts than `max_failed_hosts` stop the run, unless `continue_on_error`. An unknown outcome
    (the connection was lost under the command) stops it like an interrupt: what comes next may depend on a
    command that is perhaps still running."""
    failed = tuple(o.host for o in outcomes if o.status.failed)
    interrupted = any(o.status in (Status.INTERRUPTED, Status.UNKNOWN) for o in outcomes)
    too_many = len(failed) > step.max_failed_hosts
    note = ""
    if failed and not too_many:
        note = (
            f"{len(failed)} host(s) failed, within max_failed_hosts={step.max_failed_hosts}: "
            f"going on without {', '.join(failed)}"
        )
    elif failed and step.continue_on_error:
        note = "step failed; continue_on_error: going on"
    stopped = interrupted or (too_many and not step.continue_on_error)
    return StepOutcome(step_id, tuple(outcomes), failed, stopped), note


def broken_off(error: BaseException) -> tuple[Status, str]:
    """The end of an attempt that an error broke off before it could be judged, so that its `step-start`
    still gets its end: Ctrl-C is an interrupt; anything else (an output file that cannot be written, an
    engine bug) leaves the command's effect as unknown as a crash would, and a resume asks before rerunning."""
    if isinstance(error, KeyboardInterrupt | Interrupted):
        return Status.INTERRUPTED, "interrupted"
    return Status.UNKNOWN, f"broken off by an error: {error}"


def stopped_waiting(outcome: HostOutcome) -> str:
    """Why a host whose run was stopped between its attempts is interrupted, not failed (its last attempt's
    failure said too; "not started" when the run stopped before its first)."""
    if outcome.status is Status.INTERRUPTED:
        return outcome.reason
    why = f" ({outcome.reason})" if outcome.reason else ""
    return f"interrupted while waiting to try again, after attempt {outcome.attempts} failed{why}"
