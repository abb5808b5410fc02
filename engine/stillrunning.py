"""No second copy: before a resume runs an unknown step again, is its first copy still running?

An unknown step (started, never ended: a crash, a lost connection) may still be running on its host: the
engine that started it died, not necessarily the command. Its process group is in the journal
(`process-group` records), so the resume checks that group first, says what it found, and lets the operator
choose (or `--if-still-running` choose for a script):

- wait: poll until the group ends by itself (bounded by the step's timeout, else `WAIT_LIMIT`), then as below;
- kill: stop the group as a timeout would (SIGTERM, grace, SIGKILL), then the usual unknown-outcome question;
- leave: leave it running and stop the run here; nothing starts a second copy.

A group that ended by itself (before the resume, or while it waited) may have left its exit status on the
node (`Executor.ended`; remote commands do, `engine.executors.nodefiles`): that is evidence, not a guess.
The resume shows the command's last lines and status and journals a `step-end` for the unknown attempt, as
the engine would have had it stayed: status ok or failed, that exit code, the node's tails, a reason
saying it came from the node. Then the step is done (exit 0), or a step that ran and failed, which a
resume runs again without asking. Without a status (killed by us, a reboot, no files) the usual question.

`--rerun-unknown` answers only the question that comes after: while the first copy runs, nothing reruns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from engine import records
from engine.console import Terminal
from engine.errors import ConnectionFailed, PreflightFailed, StepFailed
from engine.executors import Executor
from engine.executors.nodefiles import CAP
from engine.outcomes import HostOutcome, Status
from engine.prompting import ATTEMPTS
from engine.records import AnsweredBy, ProcessGroup
from engine.state.base import RunWriter

WAIT_LIMIT = 600.0
"""Seconds `wait` polls a group that is still running before it gives up (and asks again, or stops)."""
POLL = 1.0
"""Seconds between two checks while waiting."""


class IfStillRunning(StrEnum):
    """What to do with an unknown step's first copy that still runs: the operator's answer, or the flag's."""

    WAIT = "wait"
    KILL = "kill"
    LEAVE = "leave"


@dataclass(frozen=True)
class Check:
    """What the resume needs to check one unknown step on one host."""

    step: str
    host: str
    group: ProcessGroup
    executor: Executor
    timeout: float | None = None  # the step's: how long `wait` waits at most (else `WAIT_LIMIT`)


class FirstCopy:
    """Settles an unknown step's first copy before the rerun question: returns once it is gone (ended by
    itself, waited for, or killed) with the outcome its node recorded (journaled) or None; raises
    `StepFailed` when it is left running."""

    def __init__(
        self,
        terminal: Terminal,
        journal: RunWriter,
        user: str,
        flag: IfStillRunning | None,
        wait_limit: float = WAIT_LIMIT,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.terminal, self.journal, self.user, self.flag = terminal, journal, user, flag
        self.wait_limit, self._sleep = wait_limit, sleep

    def settle(self, check: Check) -> HostOutcome | None:
        where = f"step {check.step!r} on {check.host}"
        group = f"process group {check.group.pgid}"
        if not self._alive(check):
            self.terminal.say(f"  {where}: its {group} from the resumed run is no longer running")
            return self._ended(check, where)
        while True:
            self.terminal.say(
                f"  {where}: its {group} from the resumed run is STILL RUNNING on {check.host}", "bold yellow"
            )
            answer = self._choose(check, where, group)
            if answer is IfStillRunning.LEAVE:
                raise StepFailed(
                    f"{where}: its first copy ({group}) is still running and was left alone; nothing was "
                    "started again. Resume once it has ended (or choose wait or kill: --if-still-running)"
                )
            if answer is IfStillRunning.KILL:
                if self._kill(check):
                    self.terminal.say(
                        f"  {where}: {group} stopped (SIGTERM, then SIGKILL if needed)", "yellow"
                    )
                    return None  # whatever status it left is our kill's
                self.terminal.say(f"  {where}: {group} is still there after SIGKILL", "bold red")
            elif self._wait(check):
                self.terminal.say(f"  {where}: {group} has ended by itself")
                return self._ended(check, where)
            else:
                self.terminal.say(f"  {where}: {group} still runs after {self._limit(check):g}s", "yellow")
            if self.flag is not None:  # a flag cannot change its answer: never a second copy
                raise StepFailed(
                    f"{where}: its first copy ({group}) is still running (--if-still-running {self.flag}); "
                    "nothing was started again"
                )

    def _choose(self, check: Check, where: str, group: str) -> IfStillRunning:
        question = f"{where}: its first copy ({group}) is still running. wait for it, kill it, or leave it?"
        if self.flag is not None:
            self.terminal.say(f"  {question} {self.flag} (--if-still-running)", "yellow")
            answer, by = self.flag, AnsweredBy.IF_STILL_RUNNING
        else:
            answer, by = self._ask(question), AnsweredBy.OPERATOR
        self.journal.append(
            records.confirmation(check.step, question, answer, self.user, by, host=check.host)
        )
        return answer

    def _ask(self, question: str) -> IfStillRunning:
        """The operator's choice, asked again after a typo; no answer (end of input) leaves it alone."""
        for _ in range(ATTEMPTS):
            typed = self.terminal.ask(f"{question} [wait/kill/leave]")
            if typed is None:
                return IfStillRunning.LEAVE
            for option in IfStillRunning:
                if typed.strip().lower() in (option.value, option.value[0]):
                    return option
            self.terminal.say(f"{typed!r} is not one of wait, kill, leave", "yellow")
        return IfStillRunning.LEAVE

    def _alive(self, check: Check) -> bool:
        try:
            return check.executor.group_alive(check.group.pgid, check.group.started)
        except ConnectionFailed as error:  # cannot tell: treat as running, never start a second copy blindly
            self.terminal.say(f"  {error}", "yellow")
            return True

    def _kill(self, check: Check) -> bool:
        try:
            return check.executor.stop_group(check.group.pgid, check.group.started)
        except ConnectionFailed as error:
            self.terminal.say(f"  {error}", "yellow")
            return False

    def _ended(self, check: Check, where: str) -> HostOutcome | None:
        """The outcome the node kept for the group's command, shown and journaled; None: it kept none."""
        try:
            ended = check.executor.ended(check.group.pgid, check.group.started)
        except (ConnectionFailed, PreflightFailed) as error:  # no answer: nothing known, the usual question
            self.terminal.say(f"  {error}", "yellow")
            return None
        if ended is None:
            return None
        mask = self.terminal.masker.mask
        self.terminal.say(f"  {where}: it ended there with exit {ended.exit_code}; its last lines:", "bold")
        for stream, text in (("stdout", ended.stdout), ("stderr", ended.stderr)):
            for line in text.splitlines():
                self.terminal.output(check.host, stream, line)  # masked there
        cut = f" (the node kept the first {CAP >> 20} MiB of {' and '.join(ended.cut)})" if ended.cut else ""
        outcome = HostOutcome(
            check.step,
            check.host,
            Status.OK if ended.exit_code == 0 else Status.FAILED,
            exit_code=ended.exit_code,
            attempts=check.group.attempt,
            reason=f"ended on the node after the engine was gone: exit {ended.exit_code} (its status file){cut}",
            stdout=mask(ended.stdout),
            stderr=mask(ended.stderr),
        )
        self.journal.append(records.step_end(outcome))
        try:
            check.executor.forget(check.group.pgid, check.group.started)
        except (ConnectionFailed, PreflightFailed):
            pass  # swept later (`nodefiles.KEEP_DAYS`); the outcome is journaled either way
        return outcome

    def _limit(self, check: Check) -> float:
        return self.wait_limit if check.timeout is None else check.timeout

    def _wait(self, check: Check) -> bool:
        """Poll until the group has ended (True) or its limit passed (False); bounded."""
        limit = self._limit(check)
        self.terminal.say(f"  waiting (up to {limit:g}s) for it to end…")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self._sleep(min(POLL, max(0.0, deadline - time.monotonic())))
            if not self._alive(check):
                return True
        return False
