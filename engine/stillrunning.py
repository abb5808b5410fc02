"""No second copy: before a resume runs an unknown step again, is its first copy still running?

An unknown step (started, never ended: a crash, a lost connection) may still be running on its host: the
engine that started it died, not necessarily the command. Its process group is in the journal
(`process-group` records), so the resume checks that group first, says what it found, and lets the operator
choose (or `--if-still-running` choose for a script):

- wait: poll until the group ends by itself (bounded by `WAIT_LIMIT`), then the usual unknown-outcome question;
- kill: stop the group as a timeout would (SIGTERM, grace, SIGKILL), then the usual question;
- leave: leave it running and stop the run here; nothing starts a second copy.

`--rerun-unknown` answers only the question that comes after: while the first copy runs, nothing reruns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from engine import records
from engine.console import Terminal
from engine.errors import ConnectionFailed, StepFailed
from engine.executors import Executor
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


class FirstCopy:
    """Settles an unknown step's first copy before the rerun question: returns once it is gone (ended by
    itself, waited for, or killed); raises `StepFailed` when it is left running."""

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

    def settle(self, check: Check) -> None:
        where = f"step {check.step!r} on {check.host}"
        group = f"process group {check.group.pgid}"
        if not self._alive(check):
            self.terminal.say(f"  {where}: its {group} from the resumed run is no longer running")
            return
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
                    return
                self.terminal.say(f"  {where}: {group} is still there after SIGKILL", "bold red")
            elif self._wait(check):
                self.terminal.say(f"  {where}: {group} has ended by itself")
                return
            else:
                self.terminal.say(f"  {where}: {group} still runs after {self.wait_limit:g}s", "yellow")
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

    def _wait(self, check: Check) -> bool:
        """Poll until the group has ended (True) or `wait_limit` passed (False); bounded."""
        self.terminal.say(f"  waiting (up to {self.wait_limit:g}s) for it to end…")
        deadline = time.monotonic() + self.wait_limit
        while time.monotonic() < deadline:
            self._sleep(min(POLL, max(0.0, deadline - time.monotonic())))
            if not self._alive(check):
                return True
        return False
