"""`RehearsalExecutor`: a host's stand-in in a rehearsal. It runs nothing, connects nowhere, writes nothing.

`executor_for` gives one to every host, local or SSH, when a run is a rehearsal; the runner, the checks
and the journal cannot tell it from a real executor. Each command is answered by the rehearsal's `Stage`
(the scenario's scripted answer, an injected fault, or success with empty output), on the stage's
simulated clock. `run()` is the template's (env names checked, the job table, the slot), and where the
template would start a process and supervise it (`_execute`), the stand-in asks the stage. Its output
reaches `on_output` line by line exactly as a real command's would (`StreamText`), so the terminal, the
step's output file and masking see the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from engine.clock import Clock
from engine.executors.base import Executor, Invocation, Process, Result
from engine.executors.jobs import Job, OutputCallback, StreamText


class Stage(Protocol):
    """What simulated hosts answer: the rehearsal's scenario, faults, clock and log (`engine.rehearsal`)."""

    @property
    def clock(self) -> Clock: ...

    def answer(self, host: str, script: str, timeout: float | None) -> Result:
        """The simulated result of `script` on `host` (logged; its duration spent on the clock)."""

    def platform(self, host: str) -> str:
        """What `uname -s` would say on `host`."""

    def missing(self, host: str, programs: Iterable[str]) -> list[str]:
        """The programs `command -v` would not find on `host`."""


class RehearsalExecutor(Executor):
    """One simulated host: every command is answered by the stage, none is run."""

    def __init__(self, host: str, stage: Stage) -> None:
        super().__init__(host)
        self.stage = stage

    def _execute(
        self, job: Job, invocation: Invocation, timeout: float | None, on_output: OutputCallback | None
    ) -> Result:
        """In place of starting a process: the stage's answer, its output delivered line by line."""
        result = self.stage.answer(self.host, invocation.script, timeout)
        for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            stream = StreamText(name, on_output)
            stream.feed(text.encode())
            stream.finish()
            if stream.error is not None:
                raise stream.error
        return result

    def platform(self) -> str:
        return self.stage.platform(self.host)

    def missing_programs(self, programs: Iterable[str]) -> list[str]:
        return self.stage.missing(self.host, programs)

    def start(self, job: Job, invocation: Invocation) -> Process:
        raise AssertionError("a rehearsal starts no process")  # `_execute` is overridden: never reached

    def signal_groups(self, pgids: list[int], name: str) -> None:
        """Nothing runs, so nothing is signalled."""

    def group_alive(self, pgid: int, started: str | None) -> bool:
        return False  # a rehearsal leaves no process behind

    def stop_group(self, pgid: int, started: str | None, grace: float = 0.0) -> bool:
        return True
