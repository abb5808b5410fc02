"""One run's write-ahead journal on PostgreSQL, written on the lock's own connection and fenced by it.

Every insert is one statement that checks, in the server, that the backend running it holds the runbook's
advisory lock and that the label's epoch is still ours; it inserts nothing otherwise, and the append raises
`LockLost`. So a `step-start` that returned *proves* the lock was held when the step was recorded ("no step
starts without the lock"), a writer whose lock was taken over cannot append, and a pooler that moved the
statement to another backend is caught too. Autocommit: each statement is durable (synchronous_commit)
before it returns. Once lost, the lock is never silently taken back to go on: only the run's ending
(`interrupted`, `run-end`) is still recorded, and only where the lock is free at an unchanged epoch.

Group commit, as the file journal's: hosts appending at once each queue their record; the first in sends
everything queued in one statement (one round trip), and the others whose records it carried return
without one of their own.

Output logs stay on this workstation (`OutputFile`s in the local run directory); only the records, whose
text the caller has masked, go to the database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from engine import records
from engine.errors import JournalError, LockLost
from engine.journal import OutputFile, safe_filename, timestamp
from engine.records import Record
from engine.state.base import LockHolder
from engine.state.postgres import history, lock
from engine.state.postgres.schema import NAMESPACE

_FENCE = f"""
    SELECT 1 FROM runbook.locks l
    JOIN pg_locks p ON p.locktype = 'advisory' AND p.classid = {NAMESPACE} AND p.objid = l.key
         AND p.objsubid = 2 AND p.granted AND p.pid = pg_backend_pid()
         AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    WHERE l.runbook = %(runbook)s AND l.epoch = %(epoch)s AND l.backend_pid = pg_backend_pid()
"""

_APPEND = f"""
WITH fence AS ({_FENCE}),
added AS (
    INSERT INTO runbook.records (run_id, seq, epoch, time, type, step, host, attempt, body)
    SELECT %(run_id)s, %(first)s + r.n - 1, %(epoch)s, (r.body->>'time')::timestamptz, r.body->>'type',
           r.body->>'step', r.body->>'host', (r.body->>'attempt')::integer, r.body
    FROM jsonb_array_elements(%(batch)s) WITH ORDINALITY AS r(body, n)
    WHERE EXISTS (SELECT 1 FROM fence)
    RETURNING type, time, body
),
ended AS (
    UPDATE runbook.runs SET ended = added.time, status = added.body->>'status',
           exit_code = (added.body->>'exit_code')::integer
    FROM added WHERE runs.run_id = %(run_id)s AND added.type = 'run-end'
    RETURNING 1
),
beat AS (
    UPDATE runbook.locks SET heartbeat = now()
    WHERE runbook = %(runbook)s AND EXISTS (SELECT 1 FROM fence)
    RETURNING 1
)
SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM ended), (SELECT count(*) FROM beat)
"""

_CLEAR_LABEL = f"""
UPDATE runbook.locks SET run_id = NULL, heartbeat = NULL WHERE runbook = %(runbook)s AND EXISTS ({_FENCE})
"""

LOCK_LOST = "lock lost"
"""The `signal` of the `interrupted` record of a run stopped by the loss of its lock."""

_BEAT = f"""
UPDATE runbook.locks SET heartbeat = now() WHERE runbook = %(runbook)s AND EXISTS ({_FENCE})
"""


def encode(record: Mapping[str, Any]) -> Any:
    """A record as the JSON the database keeps: the journal's own encoding (paths, enums, times), with
    NUL characters (which jsonb cannot hold) replaced."""
    from engine.journal import _json_default

    text = json.dumps(record, ensure_ascii=False, default=_json_default).replace("\\u0000", "\ufffd")
    return json.loads(text)


@dataclass
class _Pending:
    record: Any
    done: bool = False
    error: JournalError | None = None


@dataclass(frozen=True, kw_only=True)
class Fenced:
    """Who this writer is: its run, the runbook whose label fences it and its epoch there, the sequence
    number of its first record, where it says it writes, and where its output files go."""

    runbook: str
    run_id: str
    epoch: int
    first_seq: int
    where: str
    outputs: Path
    taken_over: LockHolder | None = None


Retake = Callable[[int], "tuple[psycopg.Connection[Any], int] | None"]
"""Takes the lock again in a new session if it is free and its epoch is still the one given (nobody took
over meanwhile): that session and the new epoch, or None."""


class PostgresWriter:
    """The `RunWriter` of the PostgreSQL backend: the lock's connection, its heartbeat, the journal."""

    def __init__(
        self, connection: psycopg.Connection[Any], fenced: Fenced, retake: Retake | None = None
    ) -> None:
        self.connection, self._fenced, self._retake = connection, fenced, retake
        self.run_id, self.where, self.taken_over = fenced.run_id, fenced.where, fenced.taken_over
        self._queue_lock = threading.Lock()  # the queue, the sequence, the lost reason, the outputs
        self._send_lock = threading.Lock()  # one statement at a time on the lock's connection
        self._lost: str | None = None
        self._pending: list[_Pending] = []
        self._next_seq = fenced.first_seq
        self._outputs: dict[tuple[str, str], OutputFile] = {}
        self._heartbeat = lock.Heartbeat(self._beat, self._beat_failed)
        self._heartbeat.start()

    def append(self, record: Mapping[str, Any]) -> None:
        """Durable and proven under the lock before it returns; `LockLost` (resumable) when it is not."""
        mine = _Pending(encode({**record, "time": record.get("time") or timestamp()}))
        with self._queue_lock:
            lost = self._lost
            if lost is None:
                self._pending.append(mine)
        if lost is not None:
            if record.get("type") != Record.RUN_END:
                raise self._lost_error()
            self._end_after_loss(mine.record)
            return
        with self._send_lock:
            if not mine.done:  # else a statement that began after we queued carried ours
                with self._queue_lock:
                    batch, self._pending = self._pending, []
                    first, self._next_seq = self._next_seq, self._next_seq + len(batch)
                self._send(batch, first)
        if mine.error is not None:
            raise mine.error
        if not mine.done:  # never returns as if durable when the statement that carried it said nothing
            raise self._lose("a journal statement ended without saying whether its records were stored")

    def _send(self, batch: list[_Pending], first: int) -> None:
        """One statement for the whole batch; every record of it learns the outcome."""
        error: JournalError | None = None
        try:
            row = self.connection.execute(
                _APPEND, {**self._params(), "first": first, "batch": Jsonb([p.record for p in batch])}
            ).fetchone()
            if row is None or row[0] != len(batch):
                error = self._lose("the lock is no longer this run's (its session or epoch changed)")
        except psycopg.Error as failure:
            error = self._lose(f"the state database connection failed: {_first_line(failure)}")
        except BaseException:  # e.g. Ctrl-C mid-statement: stored or not, nobody knows
            lost = self._lose("a journal statement was broken off: its records may or may not be stored")
            for pending in batch:
                pending.error, pending.done = lost, True
            raise
        for pending in batch:
            pending.error, pending.done = error, True

    def _params(self) -> dict[str, Any]:
        return {"runbook": self._fenced.runbook, "epoch": self._fenced.epoch, "run_id": self.run_id}

    def _beat(self) -> None:
        """The heartbeat: refresh the label, fenced like a write; a failure marks the lock lost."""
        if self._lost is not None:
            return
        try:
            with self._send_lock:
                updated = self.connection.execute(_BEAT, self._params()).rowcount
            if updated != 1:
                self._lose("the lock is no longer this run's (its session or epoch changed)")
        except psycopg.Error as failure:
            self._lose(f"the state database connection failed: {_first_line(failure)}")

    def _beat_failed(self, error: Exception) -> None:
        """A heartbeat that failed other than by the database: the lock's label may go stale while this
        run lives, so the run stops at its next append (resumable) rather than carry on unproven."""
        self._lose(f"the heartbeat failed ({type(error).__name__}: {error})")

    def _lose(self, why: str) -> LockLost:
        with self._queue_lock:
            self._lost = self._lost or why
        return self._lost_error()

    def _lost_error(self) -> LockLost:
        return LockLost(
            f"lost the lock of runbook {self._fenced.runbook!r}: {self._lost}; resume with --resume {self.run_id}"
        )

    def _end_after_loss(self, run_end: Any) -> None:
        """The run stopped on its lost lock; record how it ended where the lock came back unchanged (its
        session was ended, the server restarted, and nobody took over since): in a new session, the lock
        taken again, `interrupted` ("lock lost") and the `run-end`, then let go. Where it cannot (the server
        unreachable, or the lock taken over), the run stays without an ending: abandoned, resumable."""
        again = self._retake(self._fenced.epoch) if self._retake is not None else None
        if again is None:
            raise self._lost_error()
        connection, epoch = again
        try:
            first = history.last_seq(connection, self.run_id) + 1
            batch = Jsonb([encode({**records.interrupted(LOCK_LOST), "time": timestamp()}), run_end])
            params = {**self._params(), "epoch": epoch, "first": first, "batch": batch}
            row = connection.execute(_APPEND, params).fetchone()
            if row is None or row[0] != 2:
                raise self._lost_error()
            connection.execute(_CLEAR_LABEL, params)
        except psycopg.Error:
            raise self._lost_error() from None
        finally:
            connection.close()

    def output_file(self, step_id: str, host: str) -> OutputFile:
        """A local output file (the full output never leaves this workstation)."""
        key = (step_id, host)
        with self._queue_lock:
            output = self._outputs.get(key)
            if output is None or output.closed:
                self._fenced.outputs.mkdir(parents=True, exist_ok=True)
                name = f"{safe_filename(step_id)}@{safe_filename(host)}.log"
                output = self._outputs[key] = OutputFile(self._fenced.outputs / name)
            return output

    def close(self) -> None:
        """Close the outputs, clear the label (if still ours) and end the session, which frees the lock."""
        self._heartbeat.stop()
        with self._queue_lock:
            outputs, self._outputs = list(self._outputs.values()), {}
        try:
            with self._send_lock:
                if self._lost is None:
                    self.connection.execute(_CLEAR_LABEL, self._params())
                    self.connection.execute("SELECT pg_advisory_unlock_all()")  # at once, not when the
                    # server gets round to ending the session
        except psycopg.Error:
            pass  # ending the session below frees the lock all the same; the label is then stale
        finally:
            self.connection.close()
            for output in outputs:
                output.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
