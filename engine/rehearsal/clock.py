"""The simulated clock of a rehearsal: commands, retry delays and `until` waits take simulated time only.

Time runs per host, like the run itself: each host of a step has a lane that starts when the step starts
(the end of the step before it, on every host) and advances by what its commands and delays take, so a
slow host does not make a fast one look slow, and a deadline counts only its own host's time. The runner
takes a `Timer` as each step starts on each host (`engine.clock`), which is also how the stage knows which
step a command on a host belongs to.
"""

from __future__ import annotations

import threading


class SimulatedClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0.0  # when the current step started: the end of the one before, on every host
        self._lanes: dict[str, float] = {}  # host → its time in the current step
        self._step: str | None = None
        self._current: dict[str, str | None] = {}  # host → the step it is in

    def timer(self, step: str, host: str) -> _Timer:
        with self._lock:
            if step != self._step:
                self._epoch = max([self._epoch, *self._lanes.values()])
                self._lanes, self._step = {}, step
            self._current[host] = step
        return _Timer(self, host)

    def step_of(self, host: str) -> str | None:
        """The step `host` is in (None before the first: the preflight's checks)."""
        with self._lock:
            return self._current.get(host)

    def restart(self) -> None:
        """A new pass of the run (a resume): its checks come before any step again; time goes on."""
        with self._lock:
            self._epoch = max([self._epoch, *self._lanes.values()])
            self._lanes, self._step, self._current = {}, None, {}

    def now(self, host: str) -> float:
        with self._lock:
            return self._lanes.get(host, self._epoch)

    def spend(self, host: str, seconds: float) -> tuple[float, float]:
        """`seconds` of `host`'s time pass; its start and end."""
        with self._lock:
            start = self._lanes.get(host, self._epoch)
            self._lanes[host] = start + seconds
            return start, start + seconds

    @property
    def elapsed(self) -> float:
        with self._lock:
            return max([self._epoch, *self._lanes.values()])


class _Timer:
    """One host's time in one step, as `engine.clock.Timer`."""

    def __init__(self, clock: SimulatedClock, host: str) -> None:
        self._clock, self._host = clock, host

    def now(self) -> float:
        return self._clock.now(self._host)

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        if not stop.is_set():
            self._clock.spend(self._host, seconds)
