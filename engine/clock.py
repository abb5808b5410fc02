"""Time as a run sees it: when an attempt started, how long it took, and the wait between retries.

The runner asks its fleet's `Clock` for a `Timer` per step and host instead of calling `time.monotonic()`
and `Event.wait()` itself. A real fleet's clock is the wall clock; a rehearsal's is simulated, so a
rehearsed `until` with a 10-minute deadline waits 10 simulated minutes in no time, and the deadline and
retry arithmetic (`engine.attempts`) is the same code either way.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Timer(Protocol):
    """The time of one step on one host."""

    def now(self) -> float:
        """Seconds on this timer's clock (only differences mean anything)."""

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """Wait `seconds`, or less if `stop` is set meanwhile (a real wait) or already (any wait)."""


class Clock(Protocol):
    """Hands out the timer of a step on a host; called as the step starts there."""

    def timer(self, step: str, host: str) -> Timer: ...


class _WallTimer:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


class WallClock:
    """The real clock: every timer is `time.monotonic()` and a wait that `stop` cuts short."""

    def timer(self, step: str, host: str) -> Timer:
        return WALL


WALL = _WallTimer()
