"""Reaching the team's database: one libpq connection string, the keepalive bound, and no pooler.

libpq does the connecting (`service=`, `.pgpass`, `sslmode`, `PG*` variables all work as in psql). What the
engine adds, each only where the connection string does not say otherwise:

- client-side TCP keepalives and `tcp_user_timeout`, so a query to a server that vanished fails within the
  bound instead of the OS's two hours;
- the same bound on the server's side of the lock's session (`tcp_keepalives_*`, `tcp_user_timeout`), so a
  workstation that vanishes from the network frees the lock: idle + interval × count seconds (20 + 5 × 4 =
  40 s by default; `keepalives_idle=…`, `keepalives_interval=…`, `keepalives_count=…` and `tcp_user_timeout=…`
  (ms, default the same 40 s) in the connection string change both sides);
- a check that the session is a server's own (`session()`): a pooler in transaction mode hands each
  statement to whichever backend is free, and a session-level advisory lock would then guard nothing (or
  stay held by a pooled server connection after the workstation is gone).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from engine.errors import StateUnavailable

KEEPALIVES = {"keepalives_idle": 20, "keepalives_interval": 5, "keepalives_count": 4}
"""Client-side defaults (seconds); the server's side of the lock's session gets the same values."""
_SERVER_SIDE = {
    "keepalives_idle": "tcp_keepalives_idle",
    "keepalives_interval": "tcp_keepalives_interval",
    "keepalives_count": "tcp_keepalives_count",
}
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class Spec:
    """A connection string as given, and the parameters the engine connects with."""

    text: str
    params: Mapping[str, Any]

    @property
    def keepalive_bound(self) -> float:
        """Seconds after which a vanished peer's session is dropped: idle + interval × count, or
        `tcp_user_timeout` if longer (with both set, Linux judges keepalive failure by the latter)."""
        idle, interval, count = (int(self.params[k]) for k in KEEPALIVES)
        return max(idle + interval * count, int(self.params["tcp_user_timeout"]) / 1000)

    def describe(self) -> str:
        """Where the state is, for messages: host, port and database, never a password."""
        p = conninfo_to_dict(self.text)
        host = p.get("host") or p.get("hostaddr") or os.environ.get("PGHOST") or "local socket"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        database = p.get("dbname") or os.environ.get("PGDATABASE") or p.get("service") or "(default database)"
        return f"postgresql {host}:{port}/{database}"


def parse(text: str) -> Spec:
    """The spec with the engine's defaults filled in where the string is silent; a malformed one is a
    usage-time error naming what libpq said."""
    try:
        given = conninfo_to_dict(text)
    except psycopg.ProgrammingError as error:
        raise StateUnavailable(f"RUNBOOK_STATE / --state: not a libpq connection string: {error}") from None
    params: dict[str, Any] = {"keepalives": 1, **KEEPALIVES}
    params.update({k: v for k, v in given.items() if v is not None})
    idle, interval, count = (int(params[k]) for k in KEEPALIVES)
    params.setdefault("tcp_user_timeout", 1000 * (idle + interval * count))
    if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
        params["connect_timeout"] = CONNECT_TIMEOUT
    params.setdefault("application_name", "runbook")
    return Spec(text, params)


def connect(spec: Spec) -> psycopg.Connection[Any]:
    """An autocommit connection (every statement durable on its own), or StateUnavailable saying why."""
    try:
        return psycopg.connect(**spec.params, autocommit=True)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StateUnavailable(f"cannot reach the state database ({spec.describe()}): {reason}") from None


def session(connection: psycopg.Connection[Any], spec: Spec) -> int:
    """Check the connection is one server session of a primary, and give it the keepalive bound; its pid.

    A pooler answers the client's start-up itself: the backend pid it announces (BackendKeyData, used for
    cancelling) is its own invention, not the server process that runs the statements, and in transaction
    mode two statements may run in two backends. So the announced pid and the pid two separate statements
    see must be one. A standby cannot take the lock's writes at all. (Every journal write checks again, in
    the statement itself, that its backend holds the lock.)
    """
    first = connection.execute("SELECT pg_backend_pid()").fetchone()
    row = connection.execute("SELECT pg_backend_pid(), pg_is_in_recovery()").fetchone()
    assert first is not None and row is not None
    told = connection.info.backend_pid  # from the server's BackendKeyData when the connection began
    if not first[0] == row[0] == told:
        raise StateUnavailable(
            f"{spec.describe()} is not one server session: the connection was told backend {told}, its "
            f"statements ran in backend {first[0]}, then {row[0]}. A connection pooler (pgbouncer and the "
            "like answer for the server) would hand the lock's session to others: connect the state to "
            "PostgreSQL directly"
        )
    if row[1]:
        raise StateUnavailable(f"{spec.describe()} is a standby (in recovery): the state needs the primary")
    for client, server in _SERVER_SIDE.items():
        connection.execute(f"SET {server} = {int(spec.params[client])}")
    connection.execute(f"SET tcp_user_timeout = {int(spec.params['tcp_user_timeout'])}")
    return int(row[0])
