"""The PostgreSQL state backend in process, against the real server of `pg_server`: the schema, the lock,
the fenced journal and the history. The end-to-end faults (killed holders, cut networks) are in
tests/test_state_postgres_e2e.py."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver import PgBouncer, PgDatabase, cluster_directory, standby_of

from engine.errors import Declined, LockHeld, LockLost, StateUnavailable
from engine.runfilter import RunFilter, age, moment
from engine.state.postgres import history
from engine.state.postgres.backend import PostgresState
from engine.state.postgres.schema import MIGRATIONS, migrate
from runbooks import wait_for

ME = f"{getpass.getuser()}@{socket.gethostname()}"  # who the label names: this process, wherever it runs
HEADER = {
    "runbook": {"name": "book", "version": "1", "sha256": "abc", "path": "book.yml"},
    "user": "al",
    "hostname": "laptop",
    "pid": 1,
}


def header(run_id: str) -> dict[str, Any]:
    return {"type": "run", **HEADER, "run_id": run_id}


def state(db: PgDatabase, tmp_path: Path, user: str = "alice", **extra: str) -> PostgresState:
    return PostgresState(db.url(user, **extra), tmp_path)


def test_migrate_is_idempotent_and_safe_when_two_run_it_at_once(pg_db: PgDatabase) -> None:
    pg_db.sql("DROP SCHEMA runbook CASCADE")
    results: list[tuple[int, int]] = []

    def one() -> None:
        with psycopg.connect(pg_db.url("postgres"), autocommit=True) as connection:
            results.append(migrate(connection))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [(0, len(MIGRATIONS)), (len(MIGRATIONS), len(MIGRATIONS))]
    assert pg_db.sql("SELECT version, operators FROM runbook.meta") == f"{len(MIGRATIONS)}|runbook_operators"


def test_a_run_writes_its_records_and_a_second_run_is_refused_naming_the_holder(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    first, second = state(pg_db, tmp_path), state(pg_db, tmp_path, "bob")
    writer = first.start("book", header("R1"), "text: masked")
    try:
        writer.append({"type": "step-start", "step": "a", "host": "local", "attempt": 1})
        with pytest.raises(LockHeld) as refused:
            second.start("book", header("R2"), "")
        message = str(refused.value)
        assert (
            f"runbook 'book' is being run by alice (OS user {ME}, pid {os.getpid()}, connected from "
            in message
        )
        assert "run R1" in message and "since " in message and "(for 0m0" in message
        assert ", connected from 127.0.0.1)" in message and "last heartbeat 0m0" in message
        held = second.holder("book")
        assert held is not None and held.user == "alice" and held.run_id == "R1"
    finally:
        writer.close()
    assert second.holder("book") is None
    kinds = [r["type"] for r in second.records("R1") or []]
    assert kinds == ["run", "step-start"]
    assert second.runbook_copy("R1") == "text: masked"
    again = second.start("book", header("R2"), "")  # free again
    again.close()
    first.close()
    second.close()


def test_a_terminated_lock_session_fences_every_later_append(pg_db: PgDatabase, tmp_path: Path) -> None:
    backend = state(pg_db, tmp_path)
    writer = backend.start("book", header("R1"), "")
    try:
        assert pg_db.server.terminate("usename = 'alice'", pg_db.name) >= 1
        with pytest.raises(LockLost, match="resume with --resume R1"):
            writer.append({"type": "step-start", "step": "a", "host": "local", "attempt": 1})
        with pytest.raises(LockLost):
            writer.append({"type": "step-start", "step": "b", "host": "local", "attempt": 1})
        assert pg_db.sql("SELECT run_id FROM runbook.locks") == "R1"  # the label stayed behind…
        assert state(pg_db, tmp_path, "bob").holder("book") is None  # stale without its lock: nobody
        # the run's ending is still recorded: the lock is free and nobody took it over meanwhile
        writer.append({"type": "run-end", "status": "interrupted", "exit_code": 1})
    finally:
        writer.close()
        backend.close()
    found = [(r["type"], r.get("signal")) for r in state(pg_db, tmp_path, "bob").records("R1") or []]
    assert found == [("run", None), ("interrupted", "lock lost"), ("run-end", None)]
    assert pg_db.sql("SELECT status, epoch FROM runbook.runs, runbook.locks") == "interrupted|2"


def test_a_taken_over_epoch_fences_the_old_writer_out(pg_db: PgDatabase, tmp_path: Path) -> None:
    """A zombie whose session still lives but whose epoch was raised (as a takeover does) cannot append."""
    backend = state(pg_db, tmp_path)
    writer = backend.start("book", header("R1"), "")
    try:
        pg_db.sql("UPDATE runbook.locks SET epoch = epoch + 1")
        with pytest.raises(LockLost, match="session or epoch changed"):
            writer.append({"type": "step-start", "step": "a", "host": "local", "attempt": 1})
        with pytest.raises(LockLost):  # not even its ending: the lock moved on
            writer.append({"type": "run-end", "status": "interrupted", "exit_code": 1})
    finally:
        writer.close()
        backend.close()


def test_concurrent_appends_share_one_round_trip(pg_db: PgDatabase, tmp_path: Path) -> None:
    """Group commit: while one statement is on the wire (here: held), the hosts that append queue their
    records, and the next statement carries all of them, each durable and in order before its append
    returns."""
    backend = state(pg_db, tmp_path)
    writer = backend.start("book", header("R1"), "")
    statements: list[Any] = []
    original = writer.connection.execute

    def counting(query: Any, params: Any = None) -> Any:
        statements.append(query)
        return original(query, params)

    writer.connection.execute = counting  # type: ignore[method-assign]
    writer._heartbeat.stop()  # its statements would share the connection's turn

    def host(index: int) -> None:
        writer.append({"type": "step-start", "step": "s", "host": f"h{index}", "attempt": 1})

    threads = [threading.Thread(target=host, args=(i,)) for i in range(20)]
    with writer._send_lock:  # a statement in flight: every host queues behind it
        for thread in threads:
            thread.start()
        wait_for(lambda: len(writer._pending) == 20, "the 20 hosts to queue their records")
    for thread in threads:
        thread.join(30)
    writer.close()
    records = backend.records("R1") or []
    assert sorted(r["host"] for r in records[1:]) == sorted(f"h{i}" for i in range(20))
    appends = [q for q in statements if "jsonb_array_elements" in str(q)]
    assert len(appends) == 1  # one round trip for the wave
    backend.close()


class BrokenOff(BaseException):
    """Not a psycopg error: what Ctrl-C (KeyboardInterrupt) is to a statement on the wire."""


def test_a_statement_broken_off_by_a_non_database_error_leaves_every_append_of_its_batch_raising(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """Hosts whose records rode in a statement that something other than the database broke off (Ctrl-C
    mid-execute) must not return as if their records were durable: the sender sees its error, every other
    append of that batch raises LockLost, and so does every later one."""
    backend = state(pg_db, tmp_path)
    writer = backend.start("book", header("R1"), "")
    writer._heartbeat.stop()  # its statements would share the connection's turn
    original = writer.connection.execute
    broken = threading.Event()

    def breaking(query: Any, params: Any = None) -> Any:
        if "jsonb_array_elements" in str(query) and not broken.is_set():
            broken.set()
            raise BrokenOff("Ctrl-C")
        return original(query, params)

    writer.connection.execute = breaking  # type: ignore[method-assign]
    outcomes: dict[int, str] = {}

    def host(index: int) -> None:
        try:
            writer.append({"type": "step-start", "step": "s", "host": f"h{index}", "attempt": 1})
            outcomes[index] = "returned"
        except BaseException as error:
            outcomes[index] = type(error).__name__

    threads = [threading.Thread(target=host, args=(i,)) for i in range(5)]
    with writer._send_lock:  # a statement in flight: every host queues behind it, in one batch
        for thread in threads:
            thread.start()
        wait_for(lambda: len(writer._pending) == 5, "the 5 hosts to queue their records")
    for thread in threads:
        thread.join(30)
    assert broken.is_set()
    assert sorted(outcomes.values()) == ["BrokenOff"] + ["LockLost"] * 4
    with pytest.raises(LockLost, match="broken off"):
        writer.append({"type": "step-start", "step": "t", "host": "h0", "attempt": 1})
    writer.close()
    backend.close()


def test_a_login_that_is_not_an_operator_is_refused(pg_db: PgDatabase, tmp_path: Path) -> None:
    backend = state(pg_db, tmp_path, "mallory")
    with pytest.raises(
        StateUnavailable,
        match=r"login .mallory. is not a runbook operator .* GRANT runbook_operators TO mallory",
    ):
        backend.start("book", header("R1"), "")
    assert pg_db.sql("SELECT count(*) FROM runbook.runs") == "0"


def test_an_unreachable_database_is_a_clear_error(pg_db: PgDatabase, tmp_path: Path) -> None:
    from pgserver import free_port

    backend = PostgresState(f"postgresql://alice@127.0.0.1:{free_port()}/nowhere", tmp_path)
    with pytest.raises(
        StateUnavailable, match=r"cannot reach the state database \(postgresql 127.0.0.1:\d+/nowhere\)"
    ):
        backend.start("book", header("R1"), "")


def test_take_over_only_of_a_stale_holder_and_only_once_confirmed(pg_db: PgDatabase, tmp_path: Path) -> None:
    """A hung but alive holder (its session up, its heartbeat stopped) is never taken over while its
    heartbeat is fresh; once stale, only after the confirmation; the old writer is then fenced out."""
    first, second = state(pg_db, tmp_path), state(pg_db, tmp_path, "bob")
    hung = first.start("book", header("R1"), "")
    hung._heartbeat.stop()  # hung: the process no longer beats, its session stays
    asked: list[str] = []

    def confirm(answer: bool) -> Any:
        def ask(holder: Any) -> bool:
            asked.append(holder.describe())
            return answer

        return ask

    try:
        with pytest.raises(LockHeld, match="--take-over refused: its heartbeat is fresh"):
            second.resume("book", "R1", take_over=confirm(True))
        assert asked == []
        pg_db.sql("UPDATE runbook.locks SET heartbeat = heartbeat - interval '1 hour'")
        with pytest.raises(Declined, match="--take-over not confirmed"):
            second.resume("book", "R1", take_over=confirm(False))
        taken = second.resume("book", "R1", take_over=confirm(True))
        assert len(asked) == 2 and f"alice (OS user {ME}" in asked[1] and "run R1" in asked[1]
        try:
            taken.append({"type": "step-start", "step": "a", "host": "local", "attempt": 1})
            with pytest.raises(LockLost):
                hung.append({"type": "step-start", "step": "b", "host": "local", "attempt": 1})
        finally:
            taken.close()
    finally:
        hung.close()
    steps = [(r["type"], r.get("step")) for r in second.records("R1") or []]
    assert steps == [("run", None), ("step-start", "a")]
    assert pg_db.sql("SELECT epoch FROM runbook.locks") == "2"
    first.close()
    second.close()


def test_a_connection_pooler_is_refused(pg_db: PgDatabase, tmp_path: Path) -> None:
    """pgbouncer in transaction mode would run the lock and the journal's writes in whichever server
    session is free; it announces a backend pid of its own, which gives it away."""
    bouncer = PgBouncer(cluster_directory() / "bouncer", pg_db.server).start()
    try:
        backend = PostgresState(bouncer.url("alice", pg_db.name), tmp_path)
        with pytest.raises(StateUnavailable, match=r"is not one server session.*connection pooler"):
            backend.start("book", header("R1"), "")
        assert pg_db.sql("SELECT count(*) FROM runbook.runs") == "0"
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.directory.parent, ignore_errors=True)


def test_history_filters_and_prune(pg_db: PgDatabase, tmp_path: Path) -> None:
    """Filters by runbook, login, start and status (abandoned: no run-end and no live lock); prune deletes
    old runs with their records."""
    alice, bob = state(pg_db, tmp_path), state(pg_db, tmp_path, "bob")
    for backend, run_id, book, ending in (
        (alice, "A1", "book", "ok"),
        (bob, "B1", "book", None),
        (bob, "B2", "other", "failed"),
    ):
        writer = backend.start(book, {**header(run_id), "runbook": {"name": book}}, "")
        if ending:
            writer.append({"type": "run-end", "status": ending, "exit_code": 0 if ending == "ok" else 1})
        writer.close()
    pg_db.sql("UPDATE runbook.runs SET started = started - interval '100 days' WHERE run_id = 'A1'")

    def ids(**where: Any) -> list[str]:
        return [run.run_id for run in alice.runs(where=RunFilter(**where))]

    assert ids() == ["B2", "B1", "A1"]
    assert ids(runbook="book") == ["B1", "A1"]
    assert ids(user="bob") == ["B2", "B1"]
    assert ids(status="abandoned") == ["B1"] and ids(status="failed") == ["B2"] and ids(status="ok") == ["A1"]
    assert ids(since=moment("30d")) == ["B2", "B1"]
    assert [r.status for r in alice.runs()] == ["failed", "abandoned", "ok"]
    assert alice.prune(age("90d")) == 1
    assert (
        ids() == ["B2", "B1"] and pg_db.sql("SELECT count(*) FROM runbook.records WHERE run_id = 'A1'") == "0"
    )
    alice.close()
    bob.close()


def test_list_queries_read_indexed_columns_not_json(pg_db: PgDatabase) -> None:
    """With many runs, every filter of the list is answered through an index of `runs`."""
    pg_db.sql(
        "INSERT INTO runbook.runs (run_id, runbook, login, started, ended, status) "
        "SELECT 'R' || i, 'book' || (i % 50), 'login' || (i % 20), now() - i * interval '1 minute', "
        "CASE WHEN i % 100 = 0 THEN NULL ELSE now() END, CASE WHEN i % 100 = 0 THEN NULL ELSE 'ok' END "
        "FROM generate_series(1, 20000) i; ANALYZE runbook.runs"
    )
    for where in (
        RunFilter(),
        RunFilter(runbook="book7"),
        RunFilter(user="login3"),
        RunFilter(status="abandoned"),
        RunFilter(status="failed"),
        RunFilter(since=moment("1h")),
    ):
        text, params = history.query(where, limit=50)
        with psycopg.connect(pg_db.url("alice"), autocommit=True) as connection:
            plan = "\n".join(row[0] for row in connection.execute("EXPLAIN " + text, params).fetchall())
        assert "Seq Scan on runs" not in plan and "Index" in plan, (where, plan)
        assert "body" not in text


def test_migrate_grants_another_operators_group(pg_db: PgDatabase, tmp_path: Path) -> None:
    """`--operators ROLE`: its members run; the default group keeps no grant, and its members are refused."""
    pg_db.sql("CREATE ROLE night_shift NOLOGIN; GRANT night_shift TO bob")
    try:
        with psycopg.connect(pg_db.url("postgres"), autocommit=True) as connection:
            assert migrate(connection, "night_shift") == (len(MIGRATIONS), len(MIGRATIONS))
        writer = state(pg_db, tmp_path, "bob").start("book", header("R1"), "")
        writer.close()
        with pytest.raises(StateUnavailable, match="login 'alice' is not a runbook operator"):
            state(pg_db, tmp_path, "alice").start("book", header("R2"), "")
        assert (
            pg_db.sql("SELECT has_table_privilege('runbook_operators', 'runbook.records', 'INSERT')") == "f"
        )
    finally:
        pg_db.sql("DROP OWNED BY night_shift; DROP ROLE night_shift")


def test_a_standby_is_refused(pg_db: PgDatabase, tmp_path: Path) -> None:
    """A server in recovery cannot take the lock's writes: refused before anything, saying so."""
    standby = standby_of(pg_db.server)
    try:
        backend = PostgresState(standby.url("alice", pg_db.name), tmp_path)
        with pytest.raises(
            StateUnavailable, match=r"is a standby \(in recovery\): the state needs the primary"
        ):
            backend.start("book", header("R1"), "")
    finally:
        standby.stop("immediate")
        shutil.rmtree(standby.directory.parent, ignore_errors=True)


def test_an_operator_deletes_no_row_nor_changes_a_runs_starter_and_prune_still_works(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """Operators only add rows and a run's end: deleting runs, records or approvals and rewriting who started
    a run (the four-eyes trigger reads it) are refused; `runs prune` deletes ended runs with their approvals."""
    alice = state(pg_db, tmp_path)
    writer = alice.start("book", header("A1"), "")
    writer.append({"type": "run-end", "status": "ok", "exit_code": 0})
    writer.close()
    pg_db.sql(
        "INSERT INTO runbook.approval_requests (run_id, step, sha256, document, required) "
        "VALUES ('A1', 'restore', 'cafe', '{}', 1)",
        user="alice",
    )
    pg_db.sql(
        "INSERT INTO runbook.approvals (run_id, step, sha256, verdict) VALUES ('A1', 'restore', 'cafe', 'approved')",
        user="bob",
    )
    for statement in (
        "DELETE FROM runbook.runs",
        "DELETE FROM runbook.records",
        "DELETE FROM runbook.approvals",
        "DELETE FROM runbook.approval_requests",
        "UPDATE runbook.runs SET login = 'bob'",
        "INSERT INTO runbook.runs (run_id, runbook, login, started) VALUES ('F1', 'book', 'bob', now())",
    ):
        with pytest.raises(RuntimeError, match="permission denied"):
            pg_db.sql(statement, user="alice")
    assert pg_db.sql("SELECT login FROM runbook.runs") == "alice"
    assert pg_db.sql("SELECT count(*) FROM runbook.approvals") == "1"
    with pytest.raises(RuntimeError, match="violates foreign key"):  # not even the owner cascades them away
        pg_db.sql("DELETE FROM runbook.runs")
    assert alice.prune(age("1d")) == 0
    pg_db.sql("UPDATE runbook.runs SET started = started - interval '100 days'")
    assert alice.prune(age("90d")) == 1
    assert (
        pg_db.sql(
            "SELECT (SELECT count(*) FROM runbook.runs) + (SELECT count(*) FROM runbook.records) "
            "+ (SELECT count(*) FROM runbook.approval_requests) + (SELECT count(*) FROM runbook.approvals)"
        )
        == "0"
    )
    alice.close()


def test_a_heartbeat_that_fails_unexpectedly_beats_on_and_the_run_stops_at_its_next_append(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """An exception other than the database's does not end the heartbeat thread in silence: the thread
    beats on, and the writer told of it stops the run (resumably) at its next append."""
    from engine.state.postgres.lock import Heartbeat

    beats: list[int] = []
    failures: list[Exception] = []

    def beat() -> None:
        beats.append(len(beats))
        if len(beats) == 1:
            raise ValueError("a bug in the beat")

    heartbeat = Heartbeat(beat, failures.append, period=0.01)
    heartbeat.start()
    wait_for(lambda: len(beats) >= 3, "three beats", timeout=30)
    heartbeat.stop()
    assert [str(f) for f in failures] == ["a bug in the beat"]

    writer = state(pg_db, tmp_path).start("book", header("H1"), "")
    writer._beat_failed(RuntimeError("boom"))  # what the heartbeat thread calls on such a failure
    with pytest.raises(
        LockLost, match=r"the heartbeat failed \(RuntimeError: boom\); resume with --resume H1"
    ):
        writer.append({"type": "step-start", "step": "one"})
    writer.close()
