"""The stage: what every simulated host answers, and the log of every command it was asked to run.

`answer` is the whole of a simulated command: the step it belongs to (from the clock), a fault that hits
it, else the scenario's first matching rule (a sequence answers successive calls on each host), else
success with empty output, which the report lists as unscripted. The duration is spent on the host's
simulated lane; one longer than the step's timeout is cut there and times out, as it would for real.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from engine.executors import Result
from engine.rehearsal.clock import SimulatedClock
from engine.rehearsal.faults import Fault, Kind
from engine.rehearsal.scenario import Answer, Scenario

UNSCRIPTED = "unscripted"


class Killed(Exception):
    """`--kill-at`: the engine stops here as if killed (no run end; the step's outcome is unknown)."""


@dataclass(frozen=True, kw_only=True)
class Call:
    """One command a host was asked to run, on the simulated clock, with what answered it."""

    run: int  # 1: the first pass; 2: the resume after `--kill-at`
    step: str | None  # None: a preflight check
    host: str
    command: str
    start: float
    end: float
    exit_code: int | None
    stdout: str
    stderr: str
    source: str  # the scenario rule, UNSCRIPTED, or the fault
    fault: Fault | None = None
    timed_out: bool = False


class Stage:
    def __init__(self, scenario: Scenario, faults: Iterable[Fault] = ()) -> None:
        self.scenario = scenario
        self.faults = tuple(faults)
        self.clock = SimulatedClock()
        self.calls: list[Call] = []
        self.run = 1
        self._counts: Counter[tuple[int, str]] = Counter()  # (rule, host) → calls answered so far
        self._lock = threading.Lock()

    def next_run(self) -> None:
        self.run += 1
        self.clock.restart()

    def document(self) -> str:
        """Every call as JSON, for the rehearsal's run directory (what the hosts were asked, byte for byte)."""
        calls = [
            {**dataclasses.asdict(c), "fault": None if c.fault is None else str(c.fault)} for c in self.calls
        ]
        scenario = {"path": self.scenario.path, "sha256": self.scenario.sha256}
        faults = [str(f) for f in self.faults]
        return json.dumps({"scenario": scenario, "faults": faults, "calls": calls}, indent=2) + "\n"

    def platform(self, host: str) -> str:
        return self.scenario.facts(host).platform

    def missing(self, host: str, programs: Iterable[str]) -> list[str]:
        lacking = self.scenario.facts(host).missing
        return [p for p in programs if p in lacking]

    def answer(self, host: str, script: str, timeout: float | None) -> Result:
        step = self.clock.step_of(host)
        fault = next((f for f in self.faults if f.hits(step, host)), None)
        if fault is not None and fault.kind is Kind.KILL:
            if self.run == 1:  # every host of the step, in the first pass: the kill takes them all
                self._log(step, host, script, Answer(), 0.0, None, str(fault), fault)
                raise Killed(f"rehearsal: {fault}: the engine stopped here as if killed")
            fault = None  # the resumed run goes on
        answer, source = self._scripted(step, host, script)
        if fault is not None and fault.kind is Kind.FAIL:
            answer = Answer(fault.exit, answer.stdout, f"rehearsal: {fault}\n", answer.duration)
        timed_out = timeout is not None and answer.duration > timeout
        lost = f"rehearsal: {fault}" if fault is not None and fault.kind is Kind.LOSE else None
        if lost is not None:
            answer = Answer(-1, answer.stdout, f"{lost}\n", answer.duration)
        spent = timeout if timeout is not None and timed_out else answer.duration
        code = None if timed_out or lost else answer.exit
        call = self._log(step, host, script, answer, spent, code, source, fault)
        duration = call.end - call.start
        return Result(
            script, host, code, answer.stdout, answer.stderr, duration, timed_out, connection_lost=lost
        )

    def _scripted(self, step: str | None, host: str, script: str) -> tuple[Answer, str]:
        rule = self.scenario.rule_for(step, host, script)
        if rule is None:
            return Answer(), UNSCRIPTED
        with self._lock:
            call = self._counts[rule.index, host]
            self._counts[rule.index, host] += 1
        many = f", call {call + 1}" if len(rule.answers) > 1 else ""
        return rule.answer(call), rule.label + many

    def _log(
        self,
        step: str | None,
        host: str,
        script: str,
        answer: Answer,
        seconds: float,
        code: int | None,
        source: str,
        fault: Fault | None,
    ) -> Call:
        start, end = self.clock.spend(host, seconds)
        call = Call(
            run=self.run,
            step=step,
            host=host,
            command=script,
            start=start,
            end=end,
            exit_code=code,
            stdout=answer.stdout,
            stderr=answer.stderr,
            source=source,
            fault=fault,
            timed_out=seconds < answer.duration,
        )
        with self._lock:
            self.calls.append(call)
        return call
