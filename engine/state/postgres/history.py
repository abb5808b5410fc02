"""Reading the shared state back: the runs (newest first, filtered on indexed columns), one run's records,
the runbook text as it was run, and pruning old runs.

A run without a `run-end` is *running* while the session labelled with its id holds the runbook's lock, and
*abandoned* otherwise (its workstation died or lost the lock): never failed, never running forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from engine.runfilter import RunFilter
from engine.runs import UNFINISHED
from engine.state.base import ABANDONED
from engine.state.postgres.like import like_prefix

RUNNING = "running"

_STATUS = f"""
CASE WHEN r.ended IS NOT NULL THEN coalesce(r.status, 'failed')
     WHEN EXISTS (SELECT 1 FROM runbook.holders() h WHERE h.run_id = r.run_id AND h.live) THEN '{RUNNING}'
     ELSE '{ABANDONED}' END
"""


@dataclass(frozen=True)
class SharedRun:
    """One row of the shared history."""

    run_id: str
    runbook: str
    version: str | None
    sha256: str | None
    login: str
    os_user: str | None
    host: str | None
    started: datetime
    ended: datetime | None
    status: str
    exit_code: int | None


_COLUMNS = (
    "r.run_id, r.runbook, r.version, r.sha256, r.login, r.os_user, r.host, r.started, r.ended, "
    f"{_STATUS} AS status, r.exit_code"
)


def runs(connection: psycopg.Connection[Any], where: RunFilter, limit: int | None = None) -> list[SharedRun]:
    """The runs matching `where`, newest first."""
    text, params = query(where, limit)
    return [SharedRun(*row) for row in connection.execute(text, params).fetchall()]


def query(where: RunFilter, limit: int | None = None) -> tuple[str, dict[str, Any]]:
    """The list query and its parameters: conditions on indexed columns only, never the JSON bodies (a
    run not ended, running or abandoned, is found through the partial index of those)."""
    conditions: list[str] = ["true"]
    params: dict[str, Any] = {}
    if where.run_id is not None:
        conditions.append("r.run_id = %(run_id)s")
        params["run_id"] = where.run_id
    if where.runbook is not None:
        conditions.append("r.runbook = %(runbook)s")
        params["runbook"] = where.runbook
    if where.user is not None:
        conditions.append("(r.login = %(user)s OR r.os_user = %(user)s)")
        params["user"] = where.user
    if where.since is not None:
        conditions.append("r.started >= %(since)s")
        params["since"] = where.since
    if where.status in (RUNNING, ABANDONED, UNFINISHED):
        conditions.append("r.ended IS NULL")
        if where.status != UNFINISHED:
            conditions.append(f"{_STATUS} = %(status)s")
            params["status"] = where.status
    elif where.status is not None:
        conditions.append("r.status = %(status)s")
        params["status"] = where.status
    text = (
        f"SELECT {_COLUMNS} FROM runbook.runs r WHERE {' AND '.join(conditions)} "
        "ORDER BY r.started DESC, r.run_id DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    return text, params


def run(connection: psycopg.Connection[Any], run_id: str) -> SharedRun | None:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM runbook.runs r WHERE r.run_id = %s", (run_id,)
    ).fetchone()
    return SharedRun(*row) if row else None


def matching(connection: psycopg.Connection[Any], prefix: str) -> list[str]:
    """Run ids starting with `prefix` (a unique prefix names a run, as with the file backend)."""
    rows = connection.execute(
        "SELECT run_id FROM runbook.runs WHERE run_id LIKE %s ORDER BY run_id",
        (like_prefix(prefix),),
    ).fetchall()
    return [str(row[0]) for row in rows]


def records(connection: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """A run's committed records, in order, as the journal has them."""
    rows = connection.execute(
        "SELECT body FROM runbook.records WHERE run_id = %s ORDER BY seq", (run_id,)
    ).fetchall()
    return [dict(row[0]) for row in rows]


def last_seq(connection: psycopg.Connection[Any], run_id: str) -> int:
    row = connection.execute(
        "SELECT coalesce(max(seq), 0) FROM runbook.records WHERE run_id = %s", (run_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def runbook_text(connection: psycopg.Connection[Any], run_id: str) -> str | None:
    row = connection.execute("SELECT runbook_text FROM runbook.runs WHERE run_id = %s", (run_id,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def prune(connection: psycopg.Connection[Any], older_than: timedelta) -> int:
    """Delete the runs that started before now − `older_than` (with their records and approvals), except
    one still running; how many went. Through `runbook.prune`: operators may not delete rows themselves."""
    row = connection.execute("SELECT runbook.prune(%s)", (older_than,)).fetchone()
    return int(row[0]) if row else 0
