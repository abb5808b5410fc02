"""The journal's records: the one module that knows their keys, both ways.

Each record type has a builder (the only place a record is made, the `run` header too) and a frozen reading
type (the only place a record is read). `parse` turns a raw record into its reading type, tolerant of older
journals: a missing key reads as its default, an unknown record type is skipped (None). Everyone else — the
fold into a run history (`engine.history`), resume, `runs`, the filled checklist — reads these types, never
keys. Nothing here masks: callers pass text already masked by `engine.masking`. Every record also gets
"time" (UTC ISO 8601 with milliseconds) from the writer.

    {"type": "run", "run_id", "runbook": {"name", "version", "sha256", "path"}, "uses": [{"step", "path", "sha256"}],
     "variables": {name: value, secrets as MASK}, "loops": {step: [item values]}, "platform", "engine_version",
     "user", "hostname", "pid", "argv"}
    {"type": "step-start", "step", "host", "attempt"}
    {"type": "process-group", "step", "host", "attempt", "pgid", "started"} — the step's process group on its
     host, written as soon as the executor knows it; `started` tells a reused pid apart (locally the group
     leader's start time, clock ticks since boot from /proc/PID/stat; null where it cannot be known).
    {"type": "step-end", "step", "host", "status", "exit_code", "duration", "attempt", "reason", "stdout_tail",
     "stderr_tail", "stdout", "stderr", "last"} — `stdout`/`stderr` whole up to `OUTPUT_KEPT` characters (else
     their first and last lines around a cut note), so a resume gives later steps what a finished one printed;
     `last`: no further attempt of this series was to come (a resume starts a new series, not continues it)
    {"type": "confirmation", "step" (or null), "host" (re-running an unknown outcome), "question", "answer",
     "ok" (typed confirmations), "user", "by": "operator" | "--yes" | "--rerun-unknown" | "--if-still-running"}
    {"type": "manual", "step", "host": "operator", "prompt", "answer", "expected", "ok", "user",
     "by": "operator" | "--confirm-manual"}
    {"type": "resumed", "user", "pid", "variables" (as this session has them), "loops" (as this session has
     them), "argv", "taken_over" (only when this session took the lock of a dead or ended holder: who)}
    {"type": "approval-request", "step", "sha256" (of the approved document), "runbook_sha256", "plan_sha256",
     "required", "from", "requester"} — the run reached a step under `approval:` and asked
    {"type": "approval", "step", "sha256", "verdict": "approved" | "rejected" | "break-glass", "approver",
     "given" (when the approver gave it), "comment", "proof" ("database login alice", "ssh signature …")}
    {"type": "interrupted", "signal"}
    {"type": "run-end", "status", "exit_code"}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.outcomes import HostOutcome, RunStatus, Status

OPERATOR = "operator"
"""The `host` of a manual step's records: a person, not a machine."""
OUTPUT_KEPT = 64 * 1024
"""Characters of each output stream a step-end keeps (the output file has all of it)."""
CUT_NOTE = "[runbook: output cut here; the step's output file has all of it]\n"


class Record(StrEnum):
    """The `type` of every journal record; a reader that meets another type ignores it."""

    RUN = "run"
    STEP_START = "step-start"
    PROCESS_GROUP = "process-group"
    STEP_END = "step-end"
    CONFIRMATION = "confirmation"
    MANUAL = "manual"
    RESUMED = "resumed"
    APPROVAL_REQUEST = "approval-request"
    APPROVAL = "approval"
    INTERRUPTED = "interrupted"
    RUN_END = "run-end"


class AnsweredBy(StrEnum):
    """Who answered a question: the operator, or the flag that answered for them."""

    OPERATOR = OPERATOR
    YES = "--yes"
    RERUN_UNKNOWN = "--rerun-unknown"
    CONFIRM_MANUAL = "--confirm-manual"
    IF_STILL_RUNNING = "--if-still-running"


class Verdict(StrEnum):
    """What an approval says: another operator's yes or no, or the requester's own break-glass yes."""

    APPROVED = "approved"
    REJECTED = "rejected"
    BREAK_GLASS = "break-glass"


Loops = Mapping[str, Sequence[Any]]
"""A run's loop items by step (`rotate`, `snapshot/rotate`): the values, masked, in their order."""


# -- the builders -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunbookRef:
    """Which runbook a run ran: its name, version, content hash and where it was."""

    name: str
    version: str | None = None
    sha256: str = ""
    path: str = ""


@dataclass(frozen=True)
class Use:
    """A runbook used by a step (`use:`), with its content hash at the run's start."""

    step: str
    path: str
    sha256: str


def run(
    run_id: str,
    runbook: RunbookRef,
    uses: Sequence[Use],
    variables: Mapping[str, Any],
    loops: Loops,
    *,
    platform: str | None,
    engine_version: str,
    user: str,
    hostname: str,
    pid: int,
    argv: Sequence[str],
) -> dict[str, Any]:
    """The header: the runbook, the values and loop items (secrets masked), and who ran it where."""
    return {
        "type": Record.RUN,
        "runbook": {
            "name": runbook.name,
            "version": runbook.version,
            "sha256": runbook.sha256,
            "path": runbook.path,
        },
        "uses": [{"step": u.step, "path": u.path, "sha256": u.sha256} for u in uses],
        "variables": dict(variables),
        "loops": {step: list(values) for step, values in loops.items()},
        "platform": platform,
        "engine_version": engine_version,
        "user": user,
        "hostname": hostname,
        "pid": pid,
        "argv": list(argv),
        "run_id": run_id,
    }


def step_start(step: str, host: str, attempt: int) -> dict[str, Any]:
    return {"type": Record.STEP_START, "step": step, "host": host, "attempt": attempt}


def process_group(step: str, host: str, attempt: int, pgid: int, started: str | None) -> dict[str, Any]:
    """Where the step's command runs: what a resume needs to tell whether it still runs (no second copy)."""
    return {
        "type": Record.PROCESS_GROUP,
        "step": step,
        "host": host,
        "attempt": attempt,
        "pgid": pgid,
        "started": started,
    }


def step_end(outcome: HostOutcome, tail_lines: int = 20, *, last: bool = True) -> dict[str, Any]:
    """A host's outcome: tails to read at a glance, and the output bounded by `OUTPUT_KEPT` for a resume."""
    return {
        "type": Record.STEP_END,
        "step": outcome.step,
        "host": outcome.host,
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "duration": round(outcome.duration, 3),
        "attempt": outcome.attempts,
        "reason": outcome.reason or None,
        "stdout_tail": _tail(outcome.stdout, tail_lines),
        "stderr_tail": _tail(outcome.stderr, tail_lines),
        "stdout": bounded(outcome.stdout),
        "stderr": bounded(outcome.stderr),
        "last": last,
    }


def confirmation(
    step: str | None,
    question: str,
    answer: str,
    user: str,
    by: AnsweredBy,
    *,
    host: str | None = None,
    ok: bool | None = None,
) -> dict[str, Any]:
    """An answer to a question: the warnings (step None), a step's confirmation (with `ok` when typed),
    or whether to run an unknown outcome again (with its `host`)."""
    record: dict[str, Any] = {"type": Record.CONFIRMATION, "step": step}
    if host is not None:
        record["host"] = host
    record.update(question=question, answer=answer)
    if ok is not None:
        record["ok"] = ok
    return {**record, "user": user, "by": by}


def manual(
    step: str,
    prompt: str | None,
    answer: str | None,
    expected: str | None,
    ok: bool,
    user: str,
    by: AnsweredBy,
) -> dict[str, Any]:
    return {
        "type": Record.MANUAL,
        "step": step,
        "host": OPERATOR,
        "prompt": prompt,
        "answer": answer,
        "expected": expected,
        "ok": ok,
        "user": user,
        "by": by,
    }


def resumed(
    user: str,
    pid: int,
    variables: Mapping[str, Any],
    argv: Sequence[str],
    loops: Loops,
    taken_over: str | None = None,
) -> dict[str, Any]:
    """Who resumed, with what; `taken_over`: whose lock this session took (a dead or ended holder)."""
    record = {
        "type": Record.RESUMED,
        "user": user,
        "pid": pid,
        "variables": dict(variables),
        "loops": {step: list(values) for step, values in loops.items()},
        "argv": list(argv),
    }
    return record if taken_over is None else {**record, "taken_over": taken_over}


def approval_request(
    step: str, digests: Mapping[str, str], required: int, from_: Sequence[str], requester: str
) -> dict[str, Any]:
    """`digests`: the approved document's `sha256`, and the `runbook_sha256` and `plan_sha256` it names."""
    return {
        "type": Record.APPROVAL_REQUEST,
        "step": step,
        **{k: digests[k] for k in ("sha256", "runbook_sha256", "plan_sha256")},
        "required": required,
        "from": list(from_),
        "requester": requester,
    }


def approval(
    step: str, sha256: str, verdict: Verdict, approver: str, given: str, comment: str, proof: str
) -> dict[str, Any]:
    return {
        "type": Record.APPROVAL,
        "step": step,
        "sha256": sha256,
        "verdict": verdict,
        "approver": approver,
        "given": given,
        "comment": comment,
        "proof": proof,
    }


def interrupted(signal: str) -> dict[str, Any]:
    return {"type": Record.INTERRUPTED, "signal": signal}


def run_end(status: RunStatus, exit_code: int) -> dict[str, Any]:
    return {"type": Record.RUN_END, "status": status, "exit_code": exit_code}


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").split("\n")[-lines:]) if text else ""


def bounded(text: str, kept: int = OUTPUT_KEPT) -> str:
    """`text`, or past `kept` characters its first and last whole lines around `CUT_NOTE` (a line — and a
    masked secret on it — is kept whole or left out whole)."""
    if len(text) <= kept:
        return text
    head, tail = text[: kept // 2], text[-(kept // 2) :]
    head = head[: head.rfind("\n") + 1]
    cut = tail.find("\n")
    return head + CUT_NOTE + (tail[cut + 1 :] if cut >= 0 else "")


# -- the reading types ------------------------------------------------------------------------------


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


@dataclass(frozen=True, kw_only=True)
class StepStart:
    time: str = ""
    step: str
    host: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class ProcessGroup:
    time: str = ""
    step: str
    host: str
    attempt: int = 1
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
    return None if reader is None else reader(_Raw(raw))


class _Raw:
    """Typed access to one raw record: a missing or mistyped key reads as the default."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key)
        return default if value is None else str(value)

    def maybe(self, key: str) -> str | None:
        value = self.raw.get(key)
        return None if value is None else str(value)

    def int(self, key: str) -> int | None:
        value = self.raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def number(self, key: str) -> float | None:
        value = self.raw.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw.get(key)
        return value if isinstance(value, dict) else {}

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    def loops(self) -> Loops | None:
        value = self.raw.get("loops")
        if not isinstance(value, dict):
            return None
        return {str(step): tuple(items) for step, items in value.items() if isinstance(items, list)}


def _header(raw: _Raw) -> RunHeader:
    book = _Raw(raw.mapping("runbook"))
    uses = raw.raw.get("uses")
    return RunHeader(
        time=raw.text("time"),
        run_id=raw.text("run_id"),
        runbook=RunbookRef(
            name=book.text("name"),
            version=book.maybe("version"),
            sha256=book.text("sha256"),
            path=book.text("path"),
        ),
        uses=tuple(
            Use(str(u.get("step")), str(u.get("path")), str(u.get("sha256")))
            for u in (uses if isinstance(uses, list) else ())
            if isinstance(u, dict)
        ),
        variables=raw.mapping("variables"),
        loops=raw.loops(),
        platform=raw.maybe("platform"),
        engine_version=raw.maybe("engine_version"),
        user=raw.text("user"),
        hostname=raw.text("hostname"),
        pid=raw.int("pid"),
        argv=raw.strings("argv"),
    )


def _start(raw: _Raw) -> StepStart:
    return StepStart(
        time=raw.text("time"), step=raw.text("step"), host=raw.text("host"), attempt=raw.int("attempt") or 1
    )


def _group(raw: _Raw) -> ProcessGroup | None:
    pgid = raw.int("pgid")
    if pgid is None:
        return None
    return ProcessGroup(
        time=raw.text("time"),
        step=raw.text("step"),
        host=raw.text("host"),
        attempt=raw.int("attempt") or 1,
        pgid=pgid,
        started=raw.maybe("started"),
    )


def _end(raw: _Raw) -> StepEnd:
    tails = raw.text("stdout_tail"), raw.text("stderr_tail")
    outcome = HostOutcome(
        raw.text("step"),
        raw.text("host"),
        Status.recorded(raw.raw.get("status")),
        raw.int("exit_code"),
        raw.number("duration") or 0.0,
        raw.int("attempt") or 1,
        raw.text("reason"),
        raw.text("stdout", tails[0]),  # older journals kept the tails only
        raw.text("stderr", tails[1]),
    )
    last = raw.raw.get("last")
    return StepEnd(
        time=raw.text("time"),
        outcome=outcome,
        last=last if isinstance(last, bool) else True,
        stdout_tail=tails[0],
        stderr_tail=tails[1],
    )


def _confirmation(raw: _Raw) -> Confirmation:
    answer = raw.text("answer")
    ok = raw.raw.get("ok")
    return Confirmation(
        time=raw.text("time"),
        step=raw.maybe("step"),
        host=raw.maybe("host"),
        question=raw.text("question"),
        answer=answer,
        ok=ok is True if "ok" in raw.raw else answer == "yes",
        user=raw.text("user"),
        by=raw.text("by", AnsweredBy.OPERATOR),
    )


def _manual(raw: _Raw) -> Manual:
    return Manual(
        time=raw.text("time"),
        step=raw.text("step"),
        host=raw.text("host", OPERATOR),
        prompt=raw.maybe("prompt"),
        answer=raw.maybe("answer"),
        expected=raw.maybe("expected"),
        ok=bool(raw.raw.get("ok")),
        user=raw.text("user"),
        by=raw.text("by", AnsweredBy.OPERATOR),
    )


def _resumed(raw: _Raw) -> Resumed:
    return Resumed(
        time=raw.text("time"),
        user=raw.text("user"),
        pid=raw.int("pid"),
        variables=raw.mapping("variables"),
        loops=raw.loops(),
        argv=raw.strings("argv"),
    )


def _approval_request(raw: _Raw) -> ApprovalRequest:
    return ApprovalRequest(
        time=raw.text("time"),
        step=raw.text("step"),
        sha256=raw.text("sha256"),
        runbook_sha256=raw.text("runbook_sha256"),
        plan_sha256=raw.text("plan_sha256"),
        required=raw.int("required") or 0,
        from_=raw.strings("from"),
        requester=raw.text("requester"),
    )


def _approval(raw: _Raw) -> ApprovalDecision:
    return ApprovalDecision(
        time=raw.text("time"),
        **{k: raw.text(k) for k in ("step", "sha256", "approver", "given", "comment", "proof")},
        verdict=raw.text("verdict", Verdict.APPROVED),
    )


def _interrupted(raw: _Raw) -> Interrupted:
    return Interrupted(time=raw.text("time"), signal=raw.text("signal"))


def _run_end(raw: _Raw) -> RunEnd:
    return RunEnd(
        time=raw.text("time"), status=raw.text("status", RunStatus.FAILED), exit_code=raw.int("exit_code")
    )


_READERS: dict[str, Callable[[_Raw], Parsed | None]] = {
    Record.RUN: _header,
    Record.STEP_START: _start,
    Record.PROCESS_GROUP: _group,
    Record.STEP_END: _end,
    Record.CONFIRMATION: _confirmation,
    Record.MANUAL: _manual,
    Record.RESUMED: _resumed,
    Record.APPROVAL_REQUEST: _approval_request,
    Record.APPROVAL: _approval,
    Record.INTERRUPTED: _interrupted,
    Record.RUN_END: _run_end,
}
