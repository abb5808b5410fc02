"""How a filled checklist words a run's history (`engine.history`): status labels, ticks, who answered, times.

Values in a journal are already masked, so nothing here masks.
"""

from __future__ import annotations

from engine.history import Attempt
from engine.outcomes import Status
from engine.records import AnsweredBy, Confirmation

STATUS_LABELS = {
    Status.OK: "ok",
    Status.FAILED: "FAILED",
    Status.TIMED_OUT: "TIMED OUT",
    Status.INTERRUPTED: "INTERRUPTED",
    Status.SKIPPED: "skipped",
    Status.UNKNOWN: "started, no end recorded",
    Status.DONE_BEFORE: "done before",
}


def tick(attempt: Attempt | None) -> bool | None:
    """A box's state: ticked (True) when it went well, crossed (False) when it is known to have failed,
    empty (None) when nothing is known yet, it was skipped, or it started without a recorded end."""
    if attempt is None or attempt.status is Status.UNKNOWN:
        return None
    if attempt.ok:
        return True
    return False if attempt.status.failed else None


def who(user: str, by: str) -> str:
    """`ann`, or `ann (--yes)` when a flag answered for the operator."""
    return (user or "unknown") + (f" ({by})" if by and by != AnsweredBy.OPERATOR else "")


def confirmation_text(confirmed: Confirmation, day: str = "") -> str:
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
