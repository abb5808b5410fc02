"""The team state's tables, created and upgraded by `runbook state migrate`: versioned, idempotent, and
safe when two run it at once (both wait on one advisory lock; the second finds nothing left to do).

Everything lives in the schema `runbook`. An operator is a login role that is a member of the group role
named at migrate time (`runbook_operators` unless `--operators ROLE`); the group gets exactly what a run
needs. The functions `take_over` and `holders` are SECURITY DEFINER: operators may end a stale holder's
session and see who holds a lock, not any other session. Operators never delete a row nor change who started
a run: a run updates only its end (`ended`, `status`, `exit_code`), and `runs prune` goes through the SECURITY
DEFINER `prune(interval)`, which deletes only runs ended or abandoned before the interval, with their records
and approvals.

List views read the indexed columns of `runs` (runbook, login, started, status), never the JSON bodies.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from engine.approvals import pgschema as approvals
from engine.errors import StateUnavailable

NAMESPACE = 0x72626B31  # "rbk1": the first key of every advisory lock the engine takes
MIGRATE_KEY = 0  # second key of the migration's lock; runbooks' keys start at 1
DEFAULT_OPERATORS = "runbook_operators"

_V1 = """
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE TABLE runbook.meta (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version integer NOT NULL,
    operators text NOT NULL
);
CREATE TABLE runbook.locks (
    runbook text PRIMARY KEY,
    key integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    run_id text,
    login text,
    os_user text,
    host text,
    pid integer,
    backend_pid integer,
    since timestamptz,
    heartbeat timestamptz,
    epoch bigint NOT NULL DEFAULT 0
);
CREATE TABLE runbook.runs (
    run_id text PRIMARY KEY,
    runbook text NOT NULL,
    version text,
    sha256 text,
    login text NOT NULL DEFAULT session_user,
    os_user text,
    host text,
    started timestamptz NOT NULL,
    ended timestamptz,
    status text,
    exit_code integer,
    runbook_text text
);
CREATE INDEX runs_started ON runbook.runs (started DESC);
CREATE INDEX runs_runbook_started ON runbook.runs (runbook, started DESC);
CREATE INDEX runs_login_started ON runbook.runs (login, started DESC);
CREATE INDEX runs_status_started ON runbook.runs (status, started DESC);
CREATE INDEX runs_unended ON runbook.runs (started DESC) WHERE ended IS NULL;
CREATE TABLE runbook.records (
    run_id text NOT NULL REFERENCES runbook.runs ON DELETE CASCADE,
    seq bigint NOT NULL,
    epoch bigint NOT NULL,
    time timestamptz NOT NULL,
    type text NOT NULL,
    step text,
    host text,
    attempt integer,
    login text NOT NULL DEFAULT session_user,
    body jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);
-- Who holds each runbook's lock right now: the label joined with the server's own lock table, so a label
-- whose session is gone shows no live holder.
CREATE FUNCTION runbook.holders()
RETURNS TABLE (runbook text, run_id text, login text, os_user text, host text, pid integer,
               backend_pid integer, since timestamptz, heartbeat timestamptz, epoch bigint, live boolean,
               backend_start timestamptz, client_addr text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, runbook AS $$
    SELECT l.runbook, l.run_id, l.login, l.os_user, l.host, l.pid, l.backend_pid, l.since, l.heartbeat,
           l.epoch, p.pid IS NOT NULL, a.backend_start, host(a.client_addr)
    FROM runbook.locks l
    LEFT JOIN pg_locks p ON p.locktype = 'advisory' AND p.classid = {namespace} AND p.objid = l.key
         AND p.objsubid = 2 AND p.granted AND p.pid = l.backend_pid
         AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LEFT JOIN pg_stat_activity a ON a.pid = p.pid
$$;
-- Ends the session holding a runbook's lock, only when its heartbeat is older than `stale`.
CREATE FUNCTION runbook.take_over(name text, stale interval) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, runbook AS $$
    SELECT coalesce(bool_or(pg_terminate_backend(h.backend_pid, 5000)), false)
    FROM runbook.holders() h
    WHERE h.runbook = name AND h.live AND h.heartbeat < now() - stale
$$;
"""

_PRUNE = """
-- Deletes the runs started before now - `older_than` that ended or were abandoned (no live lock holder),
-- their records and their approvals; how many runs went. Their rows are locked first, so a resume that
-- takes such a run at the same moment waits, and the run is either kept whole or deleted whole.
CREATE FUNCTION runbook.prune(older_than interval) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, runbook AS $$
DECLARE
    gone text[];
BEGIN
    gone := ARRAY(
        SELECT r.run_id FROM runbook.runs r
         WHERE r.started < now() - older_than
           AND (r.ended IS NOT NULL
                OR NOT EXISTS (SELECT 1 FROM runbook.holders() h WHERE h.run_id = r.run_id AND h.live))
           FOR UPDATE OF r);
    DELETE FROM runbook.approvals WHERE run_id = ANY (gone);
    DELETE FROM runbook.approval_requests WHERE run_id = ANY (gone);
    DELETE FROM runbook.records WHERE run_id = ANY (gone);
    DELETE FROM runbook.runs WHERE run_id = ANY (gone);
    RETURN cardinality(gone);
END
$$;
"""

MIGRATIONS: tuple[str, ...] = (_V1.format(namespace=NAMESPACE), approvals.V2 + _PRUNE)
"""Migration N+1 upgrades version N; append, never edit one that was released."""

_GRANTS = (
    """
REVOKE ALL ON SCHEMA runbook FROM PUBLIC;
REVOKE ALL ON FUNCTION runbook.holders(), runbook.take_over(text, interval), runbook.prune(interval)
    FROM PUBLIC;
GRANT USAGE ON SCHEMA runbook TO {role};
GRANT SELECT ON runbook.meta TO {role};
GRANT SELECT, INSERT, UPDATE ON runbook.locks TO {role};
GRANT SELECT ON runbook.runs TO {role};
GRANT INSERT (run_id, runbook, version, sha256, os_user, host, started, runbook_text) ON runbook.runs TO {role};
GRANT UPDATE (ended, status, exit_code) ON runbook.runs TO {role};
GRANT SELECT ON runbook.records TO {role};
GRANT INSERT (run_id, seq, epoch, time, type, step, host, attempt, body) ON runbook.records TO {role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA runbook TO {role};
GRANT EXECUTE ON FUNCTION runbook.holders(), runbook.take_over(text, interval), runbook.prune(interval)
    TO {role};
"""
    + approvals.GRANTS
)


_REVOKES = """
REVOKE ALL ON ALL TABLES IN SCHEMA runbook FROM {role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA runbook FROM {role};
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA runbook FROM {role};
REVOKE ALL ON SCHEMA runbook FROM {role};
"""


def _operators(connection: psycopg.Connection[Any]) -> str | None:
    """The group the schema was granted to, if that role still exists."""
    row = connection.execute(
        "SELECT m.operators FROM runbook.meta m JOIN pg_roles r ON r.rolname = m.operators"
    ).fetchone()
    return str(row[0]) if row else None


def current_version(connection: psycopg.Connection[Any]) -> int:
    """The schema's version; 0 when there is none yet."""
    found = connection.execute("SELECT to_regclass('runbook.meta') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = connection.execute("SELECT version FROM runbook.meta").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: psycopg.Connection[Any], operators: str = DEFAULT_OPERATORS) -> tuple[int, int]:
    """Bring the schema to the newest version and grant the operators' group what a run needs; returns
    (version before, version after). Under an advisory lock, so two at once run one after the other."""
    role_exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (operators,)).fetchone()
    if not role_exists:
        raise StateUnavailable(
            f"no role {operators!r}: create the operators' group first (CREATE ROLE {operators} NOLOGIN; "
            f"GRANT {operators} TO each operator's login)"
        )
    connection.execute("SELECT pg_advisory_lock(%s, %s)", (NAMESPACE, MIGRATE_KEY))
    try:
        with connection.transaction():
            before = current_version(connection)
            previous = _operators(connection) if before else None
            for script in MIGRATIONS[before:]:
                connection.execute(script.encode())
            if previous is not None and previous != operators:  # the old group keeps nothing
                revokes = sql.SQL(_REVOKES).format(role=sql.Identifier(previous))
                connection.execute(revokes.as_bytes(connection))
            if previous is not None:  # the group gets exactly today's grants, none an older release gave
                revokes = sql.SQL(_REVOKES).format(role=sql.Identifier(operators))
                connection.execute(revokes.as_bytes(connection))
            connection.execute(
                "INSERT INTO runbook.meta (version, operators) VALUES (%s, %s) ON CONFLICT (only_row) "
                "DO UPDATE SET version = excluded.version, operators = excluded.operators",
                (len(MIGRATIONS), operators),
            )
            grants = sql.SQL(_GRANTS).format(role=sql.Identifier(operators))
            connection.execute(grants.as_bytes(connection))
        return before, len(MIGRATIONS)
    finally:
        connection.execute("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, MIGRATE_KEY))
