"""The records' vocabulary and builders: each record is made here and only here (the `run` header too).

`engine.records` (this package's `__init__`) documents every record's keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.outcomes import HostOutcome, RunStatus

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


class Verdict(StrEnum):
    """What an approval says: another operator's yes or no, or the requester's own break-glass yes."""

    APPROVED = "approved"
    REJECTED = "rejected"
    BREAK_GLASS = "break-glass"


class AnsweredBy(StrEnum):
    """Who answered a question: the operator, or the flag that answered for them."""

    OPERATOR = OPERATOR
    YES = "--yes"
    RERUN_UNKNOWN = "--rerun-unknown"
    CONFIRM_MANUAL = "--confirm-manual"
    IF_STILL_RUNNING = "--if-still-running"
    SCENARIO = "--scenario"  # a rehearsal's scenario answered (`runbook rehearse --auto`)


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
    resolution: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The header: the runbook, the values and loop items (secrets masked), who ran it where, and where each
    SSH host name resolved when it started (`reviewing.resolution_of`; a resume checks it)."""
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
        "resolution": dict(resolution) if resolution is not None else None,
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
        **({"result": bounded(outcome.result)} if outcome.result else {}),
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
