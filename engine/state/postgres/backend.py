"""`PostgresState`: the team's shared state behind the same seam as the files (`engine.state.base`).

One connection per run holds the runbook's lock and writes its journal (`writing.PostgresWriter`); another,
opened on first use, reads (history, records, who holds a lock). Each is checked to be a session of a
primary's own (`connecting.session`) and its login an operator (`check_operator`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from engine.approvals.pgdesk import PostgresDesk
from engine.errors import Declined, LockHeld, StateUnavailable, UsageError
from engine.journal import run_directory, timestamp
from engine.locking import _user
from engine.runfilter import RunFilter
from engine.state.base import LockHolder, RunSummary, TakeOver
from engine.state.postgres import connecting, history, lock
from engine.state.postgres.schema import MIGRATIONS
from engine.state.postgres.writing import Fenced, PostgresWriter

_TAKE_OVER_WAIT = 10.0  # seconds for a terminated holder's session to go and free the lock
_RACE_TRIES = 20  # a holder seen between its lock and its label: read the label again, bounded


def check_operator(connection: psycopg.Connection[Any], spec: connecting.Spec) -> str:
    """Refuse a database without the schema (or with another version of it), and a login that is not an
    operator (a member of the group `state migrate` granted); the login."""
    row = connection.execute(
        "SELECT session_user, to_regnamespace('runbook') IS NOT NULL, "
        "coalesce(has_schema_privilege('runbook', 'USAGE'), false)"
    ).fetchone()
    assert row is not None
    login, has_schema, usable = str(row[0]), bool(row[1]), bool(row[2])
    where = spec.describe()
    if not has_schema:
        raise StateUnavailable(f"{where} has no runbook state yet: run `runbook state migrate` there first")
    if not usable:
        raise _not_an_operator(login, where, None)
    meta = connection.execute("SELECT version, operators FROM runbook.meta").fetchone()
    version, operators = meta if meta is not None else (0, None)
    if version != len(MIGRATIONS):
        newer = "upgrade the engine" if version > len(MIGRATIONS) else "run `runbook state migrate`"
        raise StateUnavailable(
            f"{where} holds state schema v{version}, this engine needs v{len(MIGRATIONS)}: {newer}"
        )
    member = connection.execute("SELECT pg_has_role(session_user, %s, 'MEMBER')", (operators,)).fetchone()
    if not member or not member[0]:
        raise _not_an_operator(login, where, operators)
    return login


def _not_an_operator(login: str, where: str, operators: str | None) -> StateUnavailable:
    """`operators`: the group, where the login may read which one it is (None: it may not)."""
    grant = (
        f"GRANT {operators} TO {login}"
        if operators
        else f"GRANT runbook_operators TO {login} (or the group `state migrate --operators` named)"
    )
    return StateUnavailable(
        f"login {login!r} is not a runbook operator on {where}: an admin can make it one with {grant}"
    )


class PostgresState:
    """The PostgreSQL state backend for one connection string; output logs stay under `local` (the state
    directory the files would use: `--state-dir`, `$RUNBOOK_STATE_DIR` or `./.runbook`)."""

    def __init__(self, spec: str, local: Path) -> None:
        self.spec = connecting.parse(spec)
        self.local = local
        self.location = self.spec.describe()
        self._reader: psycopg.Connection[Any] | None = None

    def _read(self) -> psycopg.Connection[Any]:
        if self._reader is None or self._reader.closed:
            self._reader = self._operator_session()
        return self._reader

    def _operator_session(self) -> psycopg.Connection[Any]:
        """A new connection, checked to be an operator's on an up-to-date schema."""
        connection = connecting.connect(self.spec)
        try:
            check_operator(connection, self.spec)
        except BaseException:
            connection.close()
            raise
        return connection

    # -- the lock and the journal -------------------------------------------------------------------

    def start(self, runbook_name: str, header: Mapping[str, Any], runbook_text: str) -> PostgresWriter:
        """Take the lock, record the run, append its header (a `records.run` record): the run's writer."""
        run_id = str(header["run_id"])
        connection, left = self._lock(runbook_name, take_over=None)
        try:
            runbook = header.get("runbook") or {}
            connection.execute(
                "INSERT INTO runbook.runs (run_id, runbook, version, sha256, os_user, host, started, "
                "runbook_text) VALUES (%s, %s, %s, %s, %s, %s, now(), %s)",
                (
                    run_id,
                    runbook_name,
                    runbook.get("version"),
                    runbook.get("sha256"),
                    header.get("user"),
                    header.get("hostname"),
                    runbook_text.replace("\x00", "\ufffd"),
                ),
            )
            writer = self._writer(connection, runbook_name, run_id, left, first_seq=1)
        except BaseException:
            connection.close()
            raise
        try:
            writer.append(header)
        except BaseException:
            writer.close()
            raise
        return writer

    def resume(self, runbook_name: str, run_id: str, *, take_over: TakeOver | None = None) -> PostgresWriter:
        """Take the lock again for `run_id`, raising the epoch: a free lock, or with `take_over` one whose
        holder's heartbeat is stale, once `take_over(holder)` (the operator's typed confirmation) agrees."""
        found = history.run(self._read(), run_id)
        if found is None:
            raise UsageError(f"--resume {run_id}: no such run in {self.location}")
        connection, left = self._lock(runbook_name, take_over=take_over)
        try:
            first = history.last_seq(connection, run_id) + 1
            return self._writer(connection, runbook_name, run_id, left, first_seq=first)
        except BaseException:
            connection.close()
            raise

    def _lock(
        self, runbook_name: str, take_over: TakeOver | None
    ) -> tuple[psycopg.Connection[Any], lock.Label | None]:
        """A new session holding the runbook's lock, and the label a dead holder left (if any)."""
        connection = connecting.connect(self.spec)
        try:
            connecting.session(connection, self.spec)
            check_operator(connection, self.spec)
            key = lock.key(connection, runbook_name)
            if not lock.try_lock(connection, key):
                self._refuse_or_take_over(connection, runbook_name, key, take_over)
            return connection, lock.left_label(connection, runbook_name)
        except BaseException:
            connection.close()
            raise

    def _refuse_or_take_over(
        self, connection: psycopg.Connection[Any], runbook_name: str, key: int, take_over: TakeOver | None
    ) -> None:
        """The lock is held: `LockHeld` naming the holder, unless `take_over` and its heartbeat is stale."""
        held = self._live_holder(connection, runbook_name)
        if held is None and lock.try_lock(connection, key):
            return  # the holder ended just now
        who = held.describe() if held is not None else "another session (it has not labelled the lock yet)"
        message = f"runbook {runbook_name!r} is being run by {who}; state {self.location}"
        age = held.heartbeat_age() if held is not None else None
        stale = age is not None and age > lock.STALE
        if take_over is None:
            hint = "; its heartbeat is stale: --resume RUN_ID --take-over ends that session" if stale else ""
            raise LockHeld(message + hint)
        if not stale:
            raise LockHeld(
                f"{message}. --take-over refused: its heartbeat is fresh (a hung but alive holder is never "
                f"taken over; it may once its heartbeat is older than {int(lock.STALE.total_seconds())}s)"
            )
        assert held is not None
        if not take_over(held.holder()):
            raise Declined(f"--take-over not confirmed: {message}; nothing ran")
        lock.take_over(connection, runbook_name)
        deadline = time.monotonic() + _TAKE_OVER_WAIT
        while not lock.try_lock(connection, key):
            if time.monotonic() > deadline:
                raise LockHeld(f"{message}; its session did not end after the take-over")
            time.sleep(0.1)

    def _live_holder(self, connection: psycopg.Connection[Any], runbook_name: str) -> lock.Label | None:
        for _ in range(_RACE_TRIES):
            held = lock.holder(connection, runbook_name)
            if held is not None and held.run_id is not None:
                return held
            time.sleep(0.05)
        return None

    def _writer(
        self,
        connection: psycopg.Connection[Any],
        runbook_name: str,
        run_id: str,
        left: lock.Label | None,
        first_seq: int,
    ) -> PostgresWriter:
        """Label the lock as this process's (OS user, host, pid: whoever resumes, not who began)."""
        epoch = lock.write_label(connection, runbook_name, run_id, _user(), socket.gethostname(), os.getpid())
        pid = connection.info.backend_pid
        fenced = Fenced(
            runbook=runbook_name,
            run_id=run_id,
            epoch=epoch,
            first_seq=first_seq,
            where=f"{self.location} (lock session {pid}, epoch {epoch})",
            outputs=run_directory(self.local, run_id),
            taken_over=left.holder() if left is not None else None,
        )
        return PostgresWriter(connection, fenced, lambda epoch: self._retake(runbook_name, run_id, epoch))

    def _retake(
        self, runbook_name: str, run_id: str, epoch: int
    ) -> tuple[psycopg.Connection[Any], int] | None:
        """The lock again, in a new session, if it is free and still at `epoch` (nobody took over since):
        that session and the new epoch (the label is ours again), or None."""
        try:
            connection = connecting.connect(self.spec)
        except StateUnavailable:
            return None
        try:
            connecting.session(connection, self.spec)
            check_operator(connection, self.spec)
            row = connection.execute(
                "SELECT epoch FROM runbook.locks WHERE runbook = %s", (runbook_name,)
            ).fetchone()
            if (
                row is not None
                and row[0] == epoch
                and lock.try_lock(connection, lock.key(connection, runbook_name))
            ):
                user, host = _user(), socket.gethostname()
                return connection, lock.write_label(connection, runbook_name, run_id, user, host, os.getpid())
        except (psycopg.Error, StateUnavailable):
            pass
        connection.close()
        return None

    # -- reading ------------------------------------------------------------------------------------

    def holder(self, runbook_name: str) -> LockHolder | None:
        held = lock.holder(self._read(), runbook_name)
        return held.holder() if held is not None else None

    def records(self, run_id: str) -> list[dict[str, Any]] | None:
        connection = self._read()
        if history.run(connection, run_id) is None:
            return None
        return history.records(connection, run_id)

    def runs(self, runbook: str | None = None, where: RunFilter | None = None) -> list[RunSummary]:
        """Newest first; `where` filters in the query (`runbook runs --runbook --user --since --status`)."""
        where = where or RunFilter()
        if runbook is not None:
            where = replace(where, runbook=runbook)
        return [_summary(run) for run in history.runs(self._read(), where)]

    def newest(self, runbook: str, excluding: str | None = None) -> RunSummary | None:
        found = history.runs(self._read(), RunFilter(runbook=runbook), limit=2)
        left = [run for run in found if run.run_id != excluding]
        return _summary(left[0]) if left else None

    def runbook_copy(self, run_id: str) -> str | None:
        return history.runbook_text(self._read(), run_id)

    def prune(self, older_than: timedelta) -> int:
        return history.prune(self._read(), older_than)

    def approvals(self) -> PostgresDesk:
        """A connection of the desk's own: a waiting run LISTENs on it while the writer's appends go on."""
        return PostgresDesk(self._operator_session(), self.location)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _summary(run: history.SharedRun) -> RunSummary:
    return RunSummary(
        run_id=run.run_id,
        runbook=run.runbook,
        version=run.version,
        sha256=run.sha256,
        user=f"{run.login} ({run.os_user}@{run.host})",  # the database login, then who and where
        started=timestamp(run.started),
        finished=timestamp(run.ended) if run.ended else None,
        status=run.status,
    )
