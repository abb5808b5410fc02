"""A run's records folded into its history: the one reading of a journal that everyone shares.

Resume (what finished, what to carry over), `runbook runs` (a run step by step), the filled checklist and
its timeline all read a `RunHistory`, built here from the reading types of `engine.records`, never from
keys. Per step and host it keeps every attempt with its start, end and outcome (a start without an end is
UNKNOWN: the command may or may not have had its effect), the last process group, and the answers and events
a person caused.

Loop items are known by position in the records (`rotate[2]`); a resume forced over another loop list
journals the new list (`resumed.loops`), and the fold moves what it knows to the items' new places by value
(`moved`), so a later resume still finds each item's outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.outcomes import HostOutcome, RunStatus, Status
from engine.records import (
    Confirmation,
    Interrupted,
    Loops,
    Manual,
    Parsed,
    ProcessGroup,
    Resumed,
    RunbookRef,
    RunEnd,
    RunHeader,
    StepEnd,
    StepStart,
    parse,
)

Key = tuple[str, str]
"""(step, host): a step is a unit of the plan (`rotate[2]`, `snapshot/save`)."""


@dataclass(frozen=True)
class Attempt:
    """One attempt of a step on a host: its outcome (UNKNOWN while no end is journaled) and its times."""

    outcome: HostOutcome
    started: str | None = None
    ended: str | None = None
    last: bool = True  # no further attempt of its series was to come

    @property
    def attempt(self) -> int:
        return self.outcome.attempts

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def ok(self) -> bool:
        return self.outcome.status is Status.OK

    @property
    def exit_code(self) -> int | None:
        return self.outcome.exit_code

    @property
    def duration(self) -> float | None:
        """Seconds it took, once it ended (every attempt before it and their delays included)."""
        return None if self.ended is None else self.outcome.duration

    @property
    def cut(self) -> bool:
        """Started, and stopped half-way or never heard of again: whatever it did is unknown."""
        return self.outcome.status in (Status.UNKNOWN, Status.INTERRUPTED)


@dataclass(frozen=True)
class HostHistory:
    """Every attempt of one step on one host, in order, and where its command last ran."""

    step: str
    host: str
    attempts: tuple[Attempt, ...]
    group: ProcessGroup | None = None

    @property
    def latest(self) -> Attempt:
        return self.attempts[-1]

    @property
    def outcome(self) -> HostOutcome:
        return self.latest.outcome

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def series(self) -> tuple[Attempt, ...]:
        """The attempts of the series still open (retries pending or cut short): a resume continues it."""
        closed = [i for i, attempt in enumerate(self.attempts) if attempt.last and not attempt.cut]
        return self.attempts[closed[-1] + 1 :] if closed else self.attempts


@dataclass(frozen=True)
class Event:
    """Something a person or the run's end caused, with its record as journaled (for `runs --format json`)."""

    record: Confirmation | Manual | Resumed | Interrupted | RunEnd
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class RunHistory:
    header: RunHeader
    hosts: Mapping[Key, HostHistory] = field(default_factory=dict)  # in the order they first started
    answers: Mapping[str, Manual] = field(default_factory=dict)  # manual steps' answers, by step
    confirmations: Mapping[str | None, Confirmation] = field(
        default_factory=dict
    )  # before a step; None: warnings
    events: tuple[Event, ...] = ()
    end: RunEnd | None = None
    loops: Loops | None = None  # the loop items as the latest session had them (None: an older journal)
    sessions: int = 1

    # the run's facts, as the checklist and `runs` show them

    @property
    def run_id(self) -> str:
        return self.header.run_id

    @property
    def runbook(self) -> RunbookRef:
        return self.header.runbook

    @property
    def variables(self) -> Mapping[str, Any]:
        return self.header.variables

    @property
    def platform(self) -> str | None:
        return self.header.platform

    @property
    def user(self) -> str:
        return self.header.user

    @property
    def hostname(self) -> str:
        return self.header.hostname

    @property
    def started(self) -> str:
        return self.header.time

    @property
    def ended(self) -> str | None:
        return None if self.end is None else self.end.time or None

    @property
    def status(self) -> str | None:
        """The run-end's `RunStatus`; None while the journal has no end."""
        return None if self.end is None else self.end.status

    @property
    def exit_code(self) -> int | None:
        return None if self.end is None else self.end.exit_code

    @property
    def ok(self) -> bool:
        """The run ended, and well."""
        return self.end is not None and self.end.status == RunStatus.OK

    @property
    def outcomes(self) -> dict[Key, Attempt]:
        """Each step and host's latest attempt."""
        return {key: host.latest for key, host in self.hosts.items()}

    def outcome(self, step: str, host: str, single: bool) -> Attempt | None:
        """The latest attempt of `step` on `host`; a single-host step takes its one host whatever its name."""
        found = self.hosts.get((step, host))
        if found is None and single:
            mine = [h for (s, _), h in self.hosts.items() if s == step]
            found = mine[0] if len(mine) == 1 else None
        return None if found is None else found.latest


class _Fold:
    """The mutable state of one pass over the records."""

    def __init__(self, header: RunHeader) -> None:
        self.header = header
        self.attempts: dict[Key, list[Attempt]] = {}
        self.groups: dict[Key, ProcessGroup] = {}
        self.answers: dict[str, Manual] = {}
        self.confirmations: dict[str | None, Confirmation] = {}
        self.events: list[Event] = []
        self.end: RunEnd | None = None
        self.loops = header.loops
        self.sessions = 1

    def add(self, record: Parsed, raw: Mapping[str, Any]) -> None:
        if isinstance(record, StepStart):
            outcome = HostOutcome(record.step, record.host, Status.UNKNOWN, attempts=record.attempt)
            self._attempts(record.step, record.host).append(Attempt(outcome, started=record.time, last=False))
        elif isinstance(record, StepEnd):
            self._ended(record.outcome, record.time, record.last)
        elif isinstance(record, ProcessGroup):
            self.groups[(record.step, record.host)] = record
        elif isinstance(record, (Confirmation, Manual, Resumed, Interrupted, RunEnd)):
            self.events.append(Event(record, raw))
            self._event(record)

    def _event(self, record: Confirmation | Manual | Resumed | Interrupted | RunEnd) -> None:
        if isinstance(record, Manual):
            self.answers[record.step] = record
            status = Status.OK if record.ok else Status.FAILED
            self._ended(
                HostOutcome(record.step, record.host, status, stdout=record.answer or ""), record.time
            )
        elif (
            isinstance(record, Confirmation) and record.host is None
        ):  # with a host: a resume's rerun question
            self.confirmations[record.step] = record
        elif isinstance(record, Resumed):
            self.sessions += 1
            if record.loops is not None:
                if self.loops is not None and record.loops != self.loops:
                    self._move(moved(self.loops, record.loops))
                self.loops = record.loops
        elif isinstance(record, RunEnd):
            self.end = record

    def _attempts(self, step: str, host: str) -> list[Attempt]:
        return self.attempts.setdefault((step, host), [])

    def _ended(self, outcome: HostOutcome, time: str, last: bool = True) -> None:
        """An end closes the attempt of the same number (its start gives the time it began; a manual step's
        answer and its step-end are one attempt)."""
        attempts = self._attempts(outcome.step, outcome.host)
        if attempts and attempts[-1].attempt == outcome.attempts:
            attempts[-1] = Attempt(outcome, attempts[-1].started, time, last)
        else:
            attempts.append(Attempt(outcome, None, time, last))

    def _move(self, places: Mapping[str, str | None]) -> None:
        """Known steps follow their loop item to its new place; an item no longer in the list is dropped."""
        for table in (self.attempts, self.groups):
            kept = {key: value for key, value in table.items() if key[0] not in places}
            for (step, host), value in table.items():
                where = places.get(step)
                if step in places and where is not None:
                    kept[(where, host)] = _renamed(value, where)
            table.clear()
            table.update(kept)  # type: ignore[arg-type]

    def history(self) -> RunHistory:
        return RunHistory(
            header=self.header,
            hosts={
                key: HostHistory(key[0], key[1], tuple(attempts), self.groups.get(key))
                for key, attempts in self.attempts.items()
                if attempts
            },
            answers=self.answers,
            confirmations=self.confirmations,
            events=tuple(self.events),
            end=self.end,
            loops=self.loops,
            sessions=self.sessions,
        )


def _renamed(value: Any, step: str) -> Any:
    """An attempt list or a process group, under the item's new unit id."""
    if isinstance(value, ProcessGroup):
        return replace(value, step=step)
    return [replace(a, outcome=replace(a.outcome, step=step)) for a in value]


def fold(raw_records: Iterable[Mapping[str, Any]]) -> RunHistory:
    """A run's history from its committed records (header first; records of unknown types are skipped)."""
    folding: _Fold | None = None
    for raw in raw_records:
        record = parse(raw)
        if folding is None:
            folding = _Fold(record if isinstance(record, RunHeader) else RunHeader())
            if isinstance(record, RunHeader):
                continue
        if record is not None:
            folding.add(record, raw)
    return (folding or _Fold(RunHeader())).history()


def has_header(raw_records: list[dict[str, Any]]) -> bool:
    """Whether a run's records begin with its header (a run that died as it began has none)."""
    return bool(raw_records) and isinstance(parse(raw_records[0]), RunHeader)


# -- loop items by value ------------------------------------------------------------------------------


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def moved(before: Loops, after: Loops) -> dict[str, str | None]:
    """Where each item of `before` is in `after`, matched by value (the k-th copy of a value to the k-th):
    `{"rotate[1]": "rotate[2]", "rotate[2]": None}` (None: no longer in the list). Items in place are left out."""
    places: dict[str, str | None] = {}
    for step, old in before.items():
        free: dict[str, list[int]] = {}
        for index, value in enumerate(after.get(step, ())):
            free.setdefault(_key(value), []).append(index)
        for index, value in enumerate(old):
            spots = free.get(_key(value))
            to = spots.pop(0) if spots else None
            if to != index:
                places[f"{step}[{index + 1}]"] = None if to is None else f"{step}[{to + 1}]"
    return places
