"""The approvals' desk on the team's PostgreSQL state: requests and approvals are rows (`pgschema`).

The run's side inserts its request and LISTENs on the approvals' channel, so an approval wakes it at
once; it also reads again at least every `POLL` seconds (a notification lost with a connection, or a
server that cannot send one, only slows it down). The approver's side inserts a row; who gave it is the
session's login, set and checked by the database itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from engine.approvals.desk import Given, Request
from engine.approvals.pgschema import CHANNEL
from engine.errors import JournalError, UsageError
from engine.records import Verdict
from engine.state.postgres.like import like_prefix

POLL = 2.0

_REQUEST_COLUMNS = (
    "q.run_id, q.step, r.runbook, q.sha256, q.document, q.required, q.from_roles, q.requester, "
    "to_char(q.since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
)


class PostgresDesk:
    def __init__(self, connection: psycopg.Connection[Any], where: str) -> None:
        self.connection, self.where = connection, where
        self._listening = False

    def who(self) -> str:
        row = self.connection.execute("SELECT session_user").fetchone()
        return str(row[0]) if row else ""

    def request(self, request: Request) -> Request:
        with self._lost():
            return self._request(request)

    def _request(self, request: Request) -> Request:
        missing = self.connection.execute(
            "SELECT string_agg(r, ', ') FROM unnest(%s::text[]) AS r "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)",
            (list(request.from_),),
        ).fetchone()
        if missing and missing[0]:
            raise UsageError(
                f"step {request.step!r}: approval.from names no role of {self.where}: {missing[0]} "
                "(nobody could approve it); the step did not run"
            )
        with self.connection.transaction():
            self.connection.execute(
                "UPDATE runbook.approval_requests SET closed = now() "
                "WHERE run_id = %s AND step = %s AND sha256 <> %s AND closed IS NULL",
                (request.run_id, request.step, request.sha256),
            )
            self.connection.execute(
                "INSERT INTO runbook.approval_requests (run_id, step, sha256, document, required, from_roles)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, step, sha256) DO NOTHING",
                (
                    request.run_id,
                    request.step,
                    request.sha256,
                    request.document,
                    request.required,
                    list(request.from_),
                ),
            )
        found = self._requests(
            "q.run_id = %s AND q.step = %s AND q.sha256 = %s", request.run_id, request.step, request.sha256
        )
        return found[0]

    def decisions(self, request: Request) -> list[Given]:
        with self._lost():
            return self._decisions(request)

    def _decisions(self, request: Request) -> list[Given]:
        rows = self.connection.execute(
            "SELECT sha256, verdict, approver, comment, "
            "to_char(given AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
            "FROM runbook.approvals WHERE run_id = %s AND step = %s ORDER BY given",
            (request.run_id, request.step),
        ).fetchall()
        return [
            Given(
                run_id=request.run_id,
                step=request.step,
                sha256=str(sha),
                verdict=Verdict(str(verdict)),
                approver=str(approver),
                given=str(given),
                comment=str(comment),
                proof=f"database login {approver}",
            )
            for sha, verdict, approver, comment, given in rows
        ]

    def refused(self) -> list[str]:
        return []

    def wait(self, seconds: float) -> None:
        with self._lost():
            if not self._listening:
                self.connection.execute(f"LISTEN {CHANNEL}")
                self._listening = True
            for _ in self.connection.notifies(timeout=min(seconds, POLL), stop_after=1):
                break

    def close_request(self, request: Request) -> None:
        with self._lost():
            self.connection.execute(
                "UPDATE runbook.approval_requests SET closed = now() WHERE run_id = %s AND step = %s "
                "AND closed IS NULL",
                (request.run_id, request.step),
            )

    @contextmanager
    def _lost(self) -> Iterator[None]:
        """A lost connection stops the waiting run before the step, resumable (approvals stay in the database)."""
        try:
            yield
        except psycopg.OperationalError as error:
            raise JournalError(
                f"the approvals' connection to {self.where} was lost ({_first_line(error)}); the step did not run: "
                "resume the run once the database is back (approvals given meanwhile still count)"
            ) from None

    def pending(self) -> list[Request]:
        return self._requests("q.closed IS NULL")

    def find(self, run_id: str, step: str) -> Request | None:
        found = self._requests("q.run_id LIKE %s AND q.step = %s", like_prefix(run_id), step)
        runs = {r.run_id for r in found}
        if len(runs) > 1:
            raise UsageError(f"{run_id!r} names {len(runs)} runs: {', '.join(sorted(runs))}")
        return found[-1] if found else None

    def give(self, request: Request, verdict: Verdict, comment: str, key: Path | None = None) -> Given:
        """The approver's answer, inserted as this session's login: the database refuses what the rules
        refuse, with its own message."""
        try:
            self.connection.execute(
                "INSERT INTO runbook.approvals (run_id, step, sha256, verdict, comment) "
                "VALUES (%s, %s, %s, %s, %s)",
                (request.run_id, request.step, request.sha256, verdict.value, comment),
            )
        except psycopg.errors.InsufficientPrivilege as error:
            raise UsageError(f"the database refused the approval: {_first_line(error)}") from None
        except (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation) as error:
            raise UsageError(f"the database refused the approval: {_first_line(error)}") from None
        mine = [g for g in self.decisions(request) if g.sha256 == request.sha256]
        login = self.who()
        return next(g for g in reversed(mine) if g.approver == login)

    def close(self) -> None:
        self.connection.close()

    def _requests(self, where: str, *params: Any) -> list[Request]:
        rows = self.connection.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM runbook.approval_requests q "
            f"JOIN runbook.runs r USING (run_id) WHERE {where} ORDER BY q.since",
            params,
        ).fetchall()
        return [
            Request(
                run_id=str(run_id),
                step=str(step),
                runbook=str(runbook),
                sha256=str(sha),
                document=str(document),
                required=int(required),
                from_=tuple(from_roles or ()),
                requester=str(requester),
                since=str(since),
            )
            for run_id, step, runbook, sha, document, required, from_roles, requester, since in rows
        ]


def _first_line(error: psycopg.Error) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
