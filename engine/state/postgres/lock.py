"""The runbook's lock on PostgreSQL: a session-level advisory lock in the engine's namespace, and a label.

`pg_try_advisory_lock(NAMESPACE, key)` (the two-int4 form: `pg_locks` shows it as classid = NAMESPACE,
objid = key, objsubid = 2) is held by the lock's own connection for the whole run, so the server drops it
the moment that session ends: the process killed, its connections terminated, the server restarted, or the
workstation gone from the network (after the keepalive bound, `connecting`). Each runbook gets its own key
from `runbook.locks` (an identity column), so two runbooks never share one by a hash collision.

The label row beside it says who holds it (run id, database login, OS user, host, pid, since, heartbeat) and
carries the epoch: every acquisition raises it, and every journal write is fenced by it (`writing`). A label
is believed only together with the server's lock table (`runbook.holders()`): a label whose session is gone
is stale and names nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from engine.state.base import LockHolder
from engine.state.postgres.schema import NAMESPACE

HEARTBEAT = 5.0
"""Seconds between two heartbeats of the holder's label."""
STALE = timedelta(seconds=30)
"""A holder whose heartbeat is older than this may be taken over (`--take-over`), never a fresher one."""


@dataclass(frozen=True)
class Label:
    """Who holds (or held) a runbook's lock, as its label says; `live` when the server still has the lock."""

    runbook: str
    run_id: str | None
    login: str | None
    os_user: str | None
    host: str | None
    pid: int | None
    since: datetime | None
    heartbeat: datetime | None
    epoch: int
    live: bool = False
    address: str | None = None  # the holder's client address as the server sees it (pg_stat_activity)

    def heartbeat_age(self, now: datetime | None = None) -> timedelta | None:
        if self.heartbeat is None:
            return None
        return (now or datetime.now(UTC)) - self.heartbeat

    def describe(self, now: datetime | None = None) -> str:
        """`alice (OS user al@laptop, pid 42) since … (for 3m05s), run …; last heartbeat 2s ago`."""
        now = now or datetime.now(UTC)
        since = f" since {_stamp(self.since)} (for {_duration(now - self.since)})" if self.since else ""
        run = f", run {self.run_id}" if self.run_id else ""
        age = self.heartbeat_age(now)
        beat = f"; last heartbeat {_duration(age)} ago" if age is not None else ""
        address = f", connected from {self.address}" if self.address else ""
        return f"{self.login} (OS user {self.os_user}@{self.host}, pid {self.pid}{address}){since}{run}{beat}"

    def holder(self) -> LockHolder:
        """As the seam's `LockHolder`: the database login is the user; `describe()` says it all."""
        since = _stamp(self.since) if self.since else ""
        return DatabaseHolder(
            user=self.login or "",
            host=self.host or "",
            pid=self.pid or 0,
            since=since,
            run_id=self.run_id,
            text=self.describe(),
        )


@dataclass(frozen=True)
class DatabaseHolder(LockHolder):
    """A holder read from the label and the server's lock table: login, OS user, host, how long, heartbeat."""

    text: str = ""

    def describe(self) -> str:
        return self.text or super().describe()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


_LABEL_COLUMNS = "runbook, run_id, login, os_user, host, pid, since, heartbeat, epoch"


def key(connection: psycopg.Connection[Any], runbook: str) -> int:
    """The runbook's lock key (its row made on first use)."""
    connection.execute("INSERT INTO runbook.locks (runbook) VALUES (%s) ON CONFLICT DO NOTHING", (runbook,))
    row = connection.execute("SELECT key FROM runbook.locks WHERE runbook = %s", (runbook,)).fetchone()
    assert row is not None
    return int(row[0])


def try_lock(connection: psycopg.Connection[Any], lock_key: int) -> bool:
    row = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, lock_key)).fetchone()
    return bool(row and row[0])


def holder(connection: psycopg.Connection[Any], runbook: str) -> Label | None:
    """The live holder of the runbook's lock, or None: a label without a live lock is stale and ignored."""
    row = connection.execute(
        f"SELECT {_LABEL_COLUMNS}, live, client_addr FROM runbook.holders() WHERE runbook = %s AND live",
        (runbook,),
    ).fetchone()
    return Label(*row) if row else None


def left_label(connection: psycopg.Connection[Any], runbook: str) -> Label | None:
    """The label a holder that died left behind (read once we hold the lock: any label is then stale)."""
    row = connection.execute(
        f"SELECT {_LABEL_COLUMNS} FROM runbook.locks WHERE runbook = %s AND run_id IS NOT NULL", (runbook,)
    ).fetchone()
    return Label(*row) if row else None


def write_label(
    connection: psycopg.Connection[Any], runbook: str, run_id: str, os_user: str, host: str, pid: int
) -> int:
    """Label the lock we now hold, raising the epoch (which fences out every earlier holder); the epoch."""
    row = connection.execute(
        "UPDATE runbook.locks SET epoch = epoch + 1, run_id = %s, login = session_user, os_user = %s, "
        "host = %s, pid = %s, backend_pid = pg_backend_pid(), since = now(), heartbeat = now() "
        "WHERE runbook = %s RETURNING epoch",
        (run_id, os_user, host, pid, runbook),
    ).fetchone()
    assert row is not None
    return int(row[0])


def take_over(connection: psycopg.Connection[Any], runbook: str) -> bool:
    """End the session of a holder whose heartbeat is stale (the server checks that, not us)."""
    row = connection.execute("SELECT runbook.take_over(%s, %s)", (runbook, STALE)).fetchone()
    return bool(row and row[0])


class Heartbeat:
    """Calls `beat` every `HEARTBEAT` seconds in a daemon thread until stopped; `beat` reports the
    database's failures itself (the writer marks the lock lost). Anything else `beat` raises goes to
    `failed` and the thread beats on: a thread dead in silence would leave a live run looking stale."""

    def __init__(
        self, beat: Callable[[], None], failed: Callable[[Exception], None], period: float = HEARTBEAT
    ) -> None:
        self._beat, self._failed, self._period = beat, failed, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runbook-lock-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._beat()
            except Exception as error:  # reported to the run; the next beat is tried all the same
                self._failed(error)

    def stop(self) -> None:
        self._stop.set()
