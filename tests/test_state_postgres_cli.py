"""The team state from the command line, two workstations on a real PostgreSQL server: `--take-over` of a
hung holder, `state migrate`, the history's filters and `runs prune`, a libpq service."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from pgserver import PgDatabase, PgServer
from teamlab import Team, make_team, team_runbook

from engine.state.postgres.schema import MIGRATIONS
from runbooks import Lab, wait_for


@pytest.fixture
def team(pg_db: PgDatabase, tmp_path: Path) -> Team:
    return make_team(pg_db, tmp_path)


def test_take_over_of_a_hung_holder_only_when_its_heartbeat_is_stale_typed_and_journaled(team: Team) -> None:
    """alice's engine hangs (SIGSTOP: its session stays, its heartbeat stops). bob's `--take-over` is
    refused while her heartbeat is fresh; once stale, he types the run id, her session is ended, the answer
    is journaled, and when alice's engine wakes up it cannot write again (fenced out), so it starts nothing."""
    first = team.start("alice")
    wait_for(team.mark("hold.started").exists, "alice's run to reach its holding step")
    run_id = team.run_id()
    first.process.send_signal(signal.SIGSTOP)
    try:
        fresh = team.run("bob", "--resume", run_id, "--take-over")
        assert fresh.returncode == 2, fresh.stdout + fresh.stderr
        assert "--take-over refused: its heartbeat is fresh" in fresh.stderr
        team.db.sql(
            "UPDATE runbook.locks SET heartbeat = heartbeat - interval '1 hour'"
        )  # an hour of silence
        team.release()  # alice's step ends by itself; her engine, stopped, does not see it
        wait_for(lambda: not alive_group(team), "alice's step to end")
        taken = team.bob.run(
            team.bob.book,
            "--yes",
            "--resume",
            run_id,
            "--take-over",
            "--rerun-unknown",
            stdin=f"{run_id}\n",
            env=team.env("bob"),
        )
        assert taken.returncode == 0, taken.stdout + taken.stderr
        assert "whose heartbeat is stale: end that session and take over" in taken.stdout
    finally:
        first.process.send_signal(signal.SIGCONT)
    code, out, err = first.finish()
    assert code != 0 and "lost the lock of runbook 'team'" in out + err
    assert team.mark("last").exists()
    body = team.db.sql(
        f"SELECT body->>'answer' || ' ' || (body->>'ok') || ' ' || login FROM runbook.records "
        f"WHERE run_id = '{run_id}' AND type = 'confirmation'"
    )
    assert body == f"{run_id} true bob"


def alive_group(team: Team) -> bool:
    pid = int(team.mark("hold.pid").read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_state_migrate_creates_the_schema_once_and_runs_then_work(
    pg_server: PgServer, tmp_path: Path
) -> None:
    pg_server.sql('CREATE DATABASE "fresh"')
    try:
        lab = Lab(tmp_path, tmp_path)
        admin = pg_server.url("postgres", "fresh", password=False)
        refused = lab.run("migrate", "--state", pg_server.url("postgres", "fresh"), task="state")
        assert refused.returncode == 2 and "--state: a password on the command line" in refused.stderr
        first = lab.run("migrate", "--state", admin, task="state")
        assert first.returncode == 0, first.stderr
        migrated = (
            f"state schema migrated from v0 to v{len(MIGRATIONS)}; operators: members of runbook_operators"
        )
        assert migrated in first.stdout
        again = lab.run("migrate", task="state", env={"RUNBOOK_STATE": admin})
        assert again.returncode == 0 and "already up to date" in again.stdout, again.stderr
        wrong = lab.run("migrate", "--state", admin, "--operators", "nobody_here", task="state")
        assert wrong.returncode == 3 and "no role 'nobody_here'" in wrong.stderr
        lab.write(team_runbook(tmp_path))
        (tmp_path / "release").touch()
        done = lab.run(lab.book, "--yes", "--state", pg_server.url("alice", "fresh", password=False))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "postgresql 127.0.0.1:" in done.stdout and "/fresh (lock session " in done.stdout
    finally:
        pg_server.sql('DROP DATABASE "fresh" WITH (FORCE)')


def test_runs_filters_and_prune_on_the_command_line(team: Team) -> None:
    team.release()
    for who in ("alice", "bob"):
        assert team.run(who).returncode == 0
    team.db.sql("UPDATE runbook.runs SET started = started - interval '100 days' WHERE login = 'alice'")

    def listed(*args: str) -> list[str]:
        done = team.bob.run("--format", "json", *args, task="runs", env=team.env("bob"))
        assert done.returncode == 0, done.stderr
        return [run["user"].split(" (")[0] for run in json.loads(done.stdout)["runs"]]

    assert listed() == ["bob", "alice"]
    assert listed("--user", "alice") == ["alice"] and listed("--since", "30d") == ["bob"]
    assert (
        listed("--status", "ok", "--runbook", "team") == ["bob", "alice"]
        and listed("--status", "abandoned") == []
    )
    pruned = team.bob.run("prune", "--older-than", "90d", task="runs", env=team.env("bob"))
    assert pruned.returncode == 0 and "pruned 1 run started more than 90d ago" in pruned.stdout, pruned.stderr
    assert listed() == ["bob"]


def test_a_libpq_service_names_the_database(team: Team) -> None:
    """libpq does the connecting: `RUNBOOK_STATE=service=team` reads ~/.pg_service.conf (and would read
    ~/.pgpass, sslmode… the same way), and the run is the service's login's."""
    server = team.db.server
    (team.bob.home / ".pg_service.conf").write_text(
        f"[team]\nhost=127.0.0.1\nport={server.port}\ndbname={team.db.name}\nuser=bob\n"
    )
    team.release()
    done = team.bob.run(team.bob.book, "--yes", env={"RUNBOOK_STATE": "service=team"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert team.db.sql("SELECT login FROM runbook.runs") == "bob"
