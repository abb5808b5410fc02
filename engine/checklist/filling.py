"""What a run's journal says, folded for a checklist: per step and host, per manual step, per confirmation.

Reads only the record types `engine.journal` documents (run, step-start, step-end, manual, confirmation,
run-end); anything else is ignored. Values in a journal are already masked, so nothing here masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.journal import AnsweredBy, Record
from engine.outcomes import RunStatus, Status

STATUS_LABELS = {
    Status.OK: "ok",
    Status.FAILED: "FAILED",
    Status.TIMED_OUT: "TIMED OUT",
    Status.INTERRUPTED: "INTERRUPTED",
    Status.SKIPPED: "skipped",
    Status.UNKNOWN: "started, no end recorded",
    Status.DONE_BEFORE: "done before",
}


@dataclass(frozen=True)
class Outcome:
    """One step on one host, as the journal last saw it (a later attempt replaces an earlier one)."""

    status: Status
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    exit_code: int | None = None
    attempt: int = 1

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def failed(self) -> bool:
        return self.status in (Status.FAILED, Status.TIMED_OUT, Status.INTERRUPTED)


@dataclass(frozen=True)
class Answer:
    """A manual step's recorded answer."""

    answer: str
    expected: str | None
    ok: bool
    user: str
    by: str
    time: str


@dataclass(frozen=True)
class Confirmed:
    """A confirmation given before a step (or, with `step` None, for the runbook's warnings)."""

    question: str
    answer: str
    ok: bool
    user: str
    by: str
    time: str


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    runbook: Mapping[str, Any]
    variables: Mapping[str, Any]
    platform: str | None
    user: str
    hostname: str
    started: str
    ended: str | None = None
    status: str | None = None
    exit_code: int | None = None
    outcomes: Mapping[tuple[str, str], Outcome] = field(default_factory=dict)
    answers: Mapping[str, Answer] = field(default_factory=dict)
    confirmations: Mapping[str | None, Confirmed] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The run ended, and well."""
        return self.status == RunStatus.OK

    def outcome(self, step: str, host: str, single: bool) -> Outcome | None:
        """The outcome of `step` on `host`; a single-host step takes its one record whatever the host was called."""
        found = self.outcomes.get((step, host))
        if found is None and single:
            mine = [o for (s, _), o in self.outcomes.items() if s == step]
            found = mine[0] if len(mine) == 1 else None
        return found


def read_run(records: list[dict[str, Any]]) -> RunRecord:
    """Fold a journal's records (header first) into a `RunRecord`."""
    header = records[0] if records and records[0].get("type") == Record.RUN else {}
    outcomes: dict[tuple[str, str], Outcome] = {}
    answers: dict[str, Answer] = {}
    confirmations: dict[str | None, Confirmed] = {}
    end: dict[str, Any] = {}
    for record in records:
        kind = record.get("type")
        if kind in (Record.STEP_START, Record.STEP_END):
            key = (str(record.get("step")), str(record.get("host")))
            outcomes[key] = _outcome(record, outcomes.get(key))
        elif kind == Record.MANUAL:
            answers[str(record.get("step"))] = _answer(record)
        elif (
            kind == Record.CONFIRMATION and record.get("host") is None
        ):  # with a host: a resume's re-run question
            step = record.get("step")
            confirmations[None if step is None else str(step)] = _confirmed(record)
        elif kind == Record.RUN_END:
            end = record
    return RunRecord(
        run_id=str(header.get("run_id", "")),
        runbook=_mapping(header.get("runbook")),
        variables=_mapping(header.get("variables")),
        platform=_text(header.get("platform")),
        user=str(header.get("user") or ""),
        hostname=str(header.get("hostname") or ""),
        started=str(header.get("time") or ""),
        ended=_text(end.get("time")),
        status=_text(end.get("status")),
        exit_code=_int(end.get("exit_code")),
        outcomes=outcomes,
        answers=answers,
        confirmations=confirmations,
    )


def _outcome(record: dict[str, Any], before: Outcome | None) -> Outcome:
    attempt = _int(record.get("attempt")) or 1
    if record.get("type") == Record.STEP_START:
        return Outcome(Status.UNKNOWN, started=_text(record.get("time")), attempt=attempt)
    started = before.started if before is not None and before.attempt == attempt else None
    duration = record.get("duration")
    return Outcome(
        Status.recorded(record.get("status")),
        started,
        _text(record.get("time")),
        float(duration) if isinstance(duration, (int, float)) else None,
        _int(record.get("exit_code")),
        attempt,
    )


def _answer(record: dict[str, Any]) -> Answer:
    return Answer(
        str(record.get("answer") or ""),
        _text(record.get("expected")),
        bool(record.get("ok")),
        str(record.get("user") or ""),
        str(record.get("by") or AnsweredBy.OPERATOR),
        str(record.get("time") or ""),
    )


def _confirmed(record: dict[str, Any]) -> Confirmed:
    answer = str(record.get("answer") or "")
    ok = record["ok"] is True if "ok" in record else answer == "yes"
    return Confirmed(
        str(record.get("question") or ""),
        answer,
        ok,
        str(record.get("user") or ""),
        str(record.get("by") or AnsweredBy.OPERATOR),
        str(record.get("time") or ""),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def who(user: str, by: str) -> str:
    """`ann`, or `ann (--yes)` when a flag answered for the operator."""
    return (user or "unknown") + (f" ({by})" if by and by != AnsweredBy.OPERATOR else "")


def confirmation_text(confirmed: Confirmed, day: str = "") -> str:
    when = f"{who(confirmed.user, confirmed.by)} at {clock(confirmed.time, day)}"
    if confirmed.ok:
        return f"Confirmed by {when}"
    return f"NOT confirmed (answered {confirmed.answer!r}) by {when}"


def clock(stamp: str | None, day: str = "") -> str:
    """`2026-11-26T11:37:22.123Z` → `11:37:22 UTC`, with the date when it is not `day`."""
    if not stamp:
        return ""
    date, _, rest = stamp.partition("T")
    time = rest[:8] + " UTC" if rest else stamp
    return time if date == day else f"{date} {time}"


def duration(seconds: float | None) -> str:
    """4 ms, 3.2 s, 4 min 05 s, 1 h 02 min."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
