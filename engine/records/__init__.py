"""The journal's records: the one package that knows their keys, both ways (`building`, `reading`).

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
     them), "argv"}
    {"type": "interrupted", "signal"}
    {"type": "run-end", "status", "exit_code"}
"""

from engine.records.building import (
    CUT_NOTE,
    OPERATOR,
    OUTPUT_KEPT,
    AnsweredBy,
    Loops,
    Record,
    RunbookRef,
    Use,
    bounded,
    confirmation,
    interrupted,
    manual,
    process_group,
    resumed,
    run,
    run_end,
    step_end,
    step_start,
)
from engine.records.reading import (
    Confirmation,
    Interrupted,
    Manual,
    Parsed,
    ProcessGroup,
    Resumed,
    RunEnd,
    RunHeader,
    StepEnd,
    StepStart,
    parse,
)

__all__ = [
    "CUT_NOTE",
    "OPERATOR",
    "OUTPUT_KEPT",
    "AnsweredBy",
    "Confirmation",
    "Interrupted",
    "Loops",
    "Manual",
    "Parsed",
    "ProcessGroup",
    "Record",
    "Resumed",
    "RunEnd",
    "RunHeader",
    "RunbookRef",
    "StepEnd",
    "StepStart",
    "Use",
    "bounded",
    "confirmation",
    "interrupted",
    "manual",
    "parse",
    "process_group",
    "resumed",
    "run",
    "run_end",
    "step_end",
    "step_start",
]
