"""The records read back: a frozen type per record type, and `parse`, tolerant of older journals.

A key a record lacks (an older journal) or holds with the wrong type reads as the field's default; a record
of a type this version does not know is skipped (None). Each reading type's fields are read by their type
(`_read`), so a new field is one line here and one in its builder.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from engine.outcomes import HostOutcome, RunStatus, Status
from engine.records.building import OPERATOR, AnsweredBy, Loops, Record, RunbookRef, Use, Verdict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True, kw_only=True)
class RunHeader:
    time: str = ""
    run_id: str = ""
    runbook: RunbookRef = field(default_factory=lambda: RunbookRef(name=""))
    uses: tuple[Use, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)
    loops: Loops | None = None  # None: a journal older than loop values (items matched by position)
    platform: str | None = None
    engine_version: str | None = None
    user: str = ""
    hostname: str = ""
    pid: int | None = None
    argv: tuple[str, ...] = ()
    resolution: Mapping[str, Any] | None = None  # None: no SSH host, or a journal older than the record


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    """What every record of one attempt of a step on a host says."""

    time: str = ""
    step: str
    host: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class StepStart(_Attempt):
    """An attempt began; without a later `StepEnd` its outcome is unknown."""


@dataclass(frozen=True, kw_only=True)
class ProcessGroup(_Attempt):
    pgid: int
    started: str | None = None  # the leader's start time (clock ticks after boot) where known


@dataclass(frozen=True, kw_only=True)
class StepEnd:
    time: str = ""
    outcome: HostOutcome
    last: bool = True  # older journals: every end closes its series
    stdout_tail: str = ""
    stderr_tail: str = ""


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    time: str = ""
    step: str | None = None  # None: the runbook's warnings
    host: str | None = None  # set: whether to run an unknown outcome again
    question: str = ""
    answer: str = ""
    ok: bool = False  # a typed confirmation's verdict, else whether the answer was yes
    user: str = ""
    by: str = AnsweredBy.OPERATOR


@dataclass(frozen=True, kw_only=True)
class Manual:
    time: str = ""
    step: str
    host: str = OPERATOR
    prompt: str | None = None
    answer: str | None = None
    expected: str | None = None
    ok: bool = False
    user: str = ""
    by: str = AnsweredBy.OPERATOR


@dataclass(frozen=True, kw_only=True)
class Resumed:
    time: str = ""
    user: str = ""
    pid: int | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    loops: Loops | None = None
    argv: tuple[str, ...] = ()
    taken_over: str | None = None  # whose lock this session took, when it took one


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    time: str = ""
    step: str = ""
    sha256: str = ""
    runbook_sha256: str = ""
    plan_sha256: str = ""
    required: int = 1
    from_: tuple[str, ...] = ()
    requester: str = ""


@dataclass(frozen=True, kw_only=True)
class ApprovalDecision:
    time: str = ""
    step: str = ""
    sha256: str = ""
    verdict: str = Verdict.APPROVED
    approver: str = ""
    given: str = ""
    comment: str = ""
    proof: str = ""


@dataclass(frozen=True, kw_only=True)
class Interrupted:
    time: str = ""
    signal: str = ""


@dataclass(frozen=True, kw_only=True)
class RunEnd:
    time: str = ""
    status: str = RunStatus.FAILED
    exit_code: int | None = None


Parsed = (
    RunHeader
    | StepStart
    | ProcessGroup
    | StepEnd
    | Confirmation
    | Manual
    | Resumed
    | ApprovalRequest
    | ApprovalDecision
    | Interrupted
    | RunEnd
)
"""What `parse` gives: one reading type per record type."""


def parse(raw: Mapping[str, Any]) -> Parsed | None:
    """The record's reading type; None for a type this version does not know (or a record without one)."""
    reader = _READERS.get(str(raw.get("type")))
    return None if reader is None else reader(raw)


def _value(raw: Mapping[str, Any], key: str, hint: Any, default: Any) -> Any:
    """`raw[key]` as the field's type says, or `default` when it is missing or of another type."""
    value = raw.get(key)
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        return None if type(None) in kinds else default
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        if origin is str:
            return str(value)
        if origin is bool and isinstance(value, bool):
            return value
        if origin in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return origin(value) if origin is float or isinstance(value, int) else default
        if origin is Mapping and isinstance(value, dict):
            return value
        if origin is tuple and isinstance(value, list):
            return tuple(str(v) for v in value)
    return default


@functools.cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(cls: type[T], raw: Mapping[str, Any], **given: Any) -> T:
    """An instance of the reading type `cls` from `raw`, its fields read by their types, `given` as given."""
    hints = _hints(cls)
    values = dict(given)
    for spec in fields(cls):
        if spec.name not in values:
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            values[spec.name] = _value(
                raw, spec.name, hints[spec.name], "" if default is MISSING else default
            )
    return cls(**values)


def _loops(raw: Mapping[str, Any]) -> Loops | None:
    value = raw.get("loops")
    if not isinstance(value, dict):
        return None
    return {str(step): tuple(items) for step, items in value.items() if isinstance(items, list)}


def _header(raw: Mapping[str, Any]) -> RunHeader:
    book, listed = raw.get("runbook"), raw.get("uses")
    runbook = _read(RunbookRef, book if isinstance(book, dict) else {})
    uses = listed if isinstance(listed, list) else []
    use = [
        Use(str(u.get("step")), str(u.get("path")), str(u.get("sha256"))) for u in uses if isinstance(u, dict)
    ]
    return _read(RunHeader, raw, runbook=runbook, uses=tuple(use), loops=_loops(raw))


def _end(raw: Mapping[str, Any]) -> StepEnd:
    tails = _read(_Tails, raw)
    outcome = HostOutcome(
        str(raw.get("step")),
        str(raw.get("host")),
        Status.recorded(raw.get("status")),
        _value(raw, "exit_code", int | None, None),
        _value(raw, "duration", float, 0.0),
        _value(raw, "attempt", int, 1) or 1,
        _value(raw, "reason", str, ""),
        _value(raw, "stdout", str, tails.stdout_tail),  # older journals kept the tails only
        _value(raw, "stderr", str, tails.stderr_tail),
        _value(raw, "result", str, ""),
    )
    return _read(StepEnd, raw, outcome=outcome)


@dataclass(frozen=True)
class _Tails:
    stdout_tail: str = ""
    stderr_tail: str = ""


def _confirmation(raw: Mapping[str, Any]) -> Confirmation:
    ok = raw.get("ok") is True if "ok" in raw else raw.get("answer") == "yes"
    return _read(Confirmation, raw, ok=ok)


def _attempt(cls: type[Any]) -> Callable[[Mapping[str, Any]], Any]:
    """A step-start or process-group reader: attempt 0 (a skipped host's start) reads as 1, as it always did."""

    def read(raw: Mapping[str, Any]) -> Any:
        if cls is ProcessGroup and _value(raw, "pgid", int | None, None) is None:
            return None
        return _read(cls, raw, attempt=_value(raw, "attempt", int, 1) or 1)

    return read


_READERS: dict[str, Callable[[Mapping[str, Any]], Parsed | None]] = {
    Record.RUN: _header,
    Record.STEP_START: _attempt(StepStart),
    Record.PROCESS_GROUP: _attempt(ProcessGroup),
    Record.STEP_END: _end,
    Record.CONFIRMATION: _confirmation,
    Record.MANUAL: lambda raw: _read(Manual, raw, ok=bool(raw.get("ok"))),
    Record.RESUMED: lambda raw: _read(Resumed, raw, loops=_loops(raw)),
    Record.APPROVAL_REQUEST: lambda raw: _read(
        ApprovalRequest, raw, from_=_value(raw, "from", tuple[str, ...], ())
    ),
    Record.APPROVAL: lambda raw: _read(ApprovalDecision, raw),
    Record.INTERRUPTED: lambda raw: _read(Interrupted, raw),
    Record.RUN_END: lambda raw: _read(RunEnd, raw),
}
