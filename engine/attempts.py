"""The attempts of one step on one host: how long each may take, whether another may start, and `until`.

`retries` bounds how many attempts there are, `deadline` how long they may take all together (counted from
the first start): no attempt starts once the next would begin after the deadline, and a running one is cut
at it. `until` judges each attempt by its output, so "wait until healthy" is one step with a visible
condition instead of a loop hidden in a script.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.clock import WALL, Timer
from engine.errors import InvalidRunbook
from engine.executors import Result
from engine.model import Step
from engine.rendering import evaluate
from engine.results import Attempt


@dataclass(frozen=True)
class Attempts:
    step: Step
    started: float = field(default_factory=time.monotonic)
    timer: Timer = WALL  # a rehearsal's is simulated (`engine.clock`): its `started` comes from it too

    @property
    def elapsed(self) -> float:
        return self.timer.now() - self.started

    def timeout(self) -> float | None:
        """This attempt's limit: the step's timeout, cut to what is left before the deadline."""
        if self.step.deadline is None:
            return self.step.timeout
        left = max(self.step.deadline - self.elapsed, 0.001)
        return left if self.step.timeout is None else min(self.step.timeout, left)

    def another(self, attempt: int) -> tuple[bool, str]:
        """May attempt `attempt + 1` start (after the delay)? If not, why not (for the outcome's reason)."""
        retries = self.step.retries
        if attempt > retries.count:
            return False, ""  # the count of attempts is shown with the outcome's time, and journaled
        deadline = self.step.deadline
        if deadline is not None and self.elapsed + retries.delay >= deadline:
            return False, f"deadline {deadline:g}s reached"
        return True, ""


def until_holds(step: Step, context: Mapping[str, Any], result: Result) -> tuple[bool, str]:
    """Whether the step's `until` is true of this attempt's `result`, and if not, why (shown and journaled).

    An expression that cannot be judged yet (output that is not JSON while a service starts) is "not yet",
    not a crash: the next attempt may answer.
    """
    if step.until is None:
        return True, ""
    answer = Attempt(result.stdout, result.stderr, result.exit_code)
    try:
        held = bool(evaluate(step.until, {**context, "result": answer}))
    except InvalidRunbook as error:
        return False, f"until: {error.problems[0].message}"
    return held, "" if held else f"until {step.until.text} is false"
