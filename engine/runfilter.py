"""Which runs `runbook runs` lists (`--runbook`, `--user`, `--since`, `--status`) and which `runs prune
--older-than` deletes: the filter as one value, and the durations and times its flags take.

A backend that can, filters where the runs are (PostgreSQL: in the query, on indexed columns); the files
filter the summaries they read with `RunFilter.matches`. Both give the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.runs import RunSummary

_AGE = re.compile(r"([0-9]+)\s*(m|h|d|w)")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def age(text: str, flag: str = "--older-than") -> timedelta:
    """`90d`, `12h`, `30m`, `2w` → a timedelta; anything else is a usage error saying what is expected."""
    found = _AGE.fullmatch(text.strip())
    if not found:
        raise UsageError(f"{flag} {text!r}: expected a number and a unit: 30m, 12h, 90d or 2w")
    return int(found[1]) * _UNITS[found[2]]


def moment(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO date or time (UTC unless it says otherwise), or an age (`7d`: seven days ago)."""
    if _AGE.fullmatch(text.strip()):
        return (now or datetime.now(UTC)) - age(text, "--since")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a date (2026-12-01), a time (2026-12-01T03:00Z) or an age (7d, 12h)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """None: any. `user` is the login (a database login, or the OS user of the files), `since` the
    earliest start, `status` how the run ended (ok, failed…) or where it stands (running, unfinished,
    abandoned)."""

    runbook: str | None = None
    user: str | None = None
    since: datetime | None = None
    status: str | None = None
    run_id: str | None = None  # one run: how the list would show it

    def matches(self, run: RunSummary) -> bool:
        """For backends that filter the summaries they read."""
        if self.run_id is not None and run.run_id != self.run_id:
            return False
        if self.runbook is not None and run.runbook != self.runbook:
            return False
        if self.user is not None and (run.user or "").split(" (")[0] != self.user:
            return False
        if self.status is not None and run.status != self.status:
            return False
        if self.since is not None:
            begun = started(run)
            return begun is not None and begun >= self.since
        return True


def started(run: RunSummary) -> datetime | None:
    """When a run started, None if its summary does not say (an unreadable journal)."""
    try:
        return datetime.fromisoformat(run.started.replace("Z", "+00:00"))
    except ValueError:
        return None
