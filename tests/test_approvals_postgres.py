"""Four eyes on the team's PostgreSQL state, as a team would try it: alice's run waits at a step under
`approval:`, other operators approve from their own workstations with their own database logins.

Roles (cluster-wide, made once): alice requests; bob and carol are operators in the role `dba`; dave is an
operator outside it; mallory is no operator. The database refuses, whatever the client: alice approving her
own step (even by a direct INSERT naming bob), mallory, dave for a `from: [dba]` step, and bob twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pgserver import PgDatabase, PgServer

from engine.approvals.desk import Request
from runbooks import Lab, Running, read_until_text, wait_for

ROLES = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dba') THEN CREATE ROLE dba NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carol') THEN
    CREATE ROLE carol LOGIN PASSWORD 'secret-pw'; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dave') THEN
    CREATE ROLE dave LOGIN PASSWORD 'secret-pw'; END IF;
END $$;
GRANT runbook_operators TO carol;
GRANT runbook_operators TO dave;
GRANT dba TO bob;
GRANT dba TO carol;
"""


def book(marks: Path, required: str = "1", timeout: str = "60s", roles: str = "[dba]") -> str:
    return f"""\
runbook: 1
name: fe
version: "1"
title: Four eyes
variables:
  target: {{type: string, default: prod}}
steps:
  - id: before
    title: Before
    run: touch {marks}/before
  - id: restore
    title: Restore
    run: echo {{{{ target }}}} > {marks}/restored
    approval: {{required: {required}, from: {roles}, timeout: {timeout}}}
"""


@dataclass(frozen=True)
class Team:
    db: PgDatabase
    labs: dict[str, Lab]
    marks: Path

    def lab(self, login: str) -> Lab:
        return self.labs[login]

    def env(self, login: str) -> dict[str, str]:
        return {"RUNBOOK_STATE": self.db.url(login)}

    def start(self, *args: str, login: str = "alice") -> Running:
        lab = self.lab(login)
        return lab.start(lab.book, "--yes", *args, env=self.env(login))

    def resume(self, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        lab = self.lab("alice")
        return lab.run(lab.book, "--yes", "--resume", run_id, *args, env=self.env("alice"))

    def approve(self, login: str, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lab(login).run(run_id, "restore", *args, task="approve", env=self.env(login))

    def waiting(self) -> str:
        """The run id of the request open now (waits for it)."""
        query = "SELECT run_id FROM runbook.approval_requests WHERE closed IS NULL"
        wait_for(lambda: self.db.sql(query), "the run to ask for approval")
        return self.db.sql(query)

    def journal(self, run_id: str, kind: str) -> list[dict[str, object]]:
        rows = self.db.sql(
            f"SELECT body FROM runbook.records WHERE run_id = '{run_id}' AND type = '{kind}' ORDER BY seq"
        )
        return [json.loads(line) for line in rows.splitlines()]


@pytest.fixture(scope="module")
def roles(pg_server: PgServer) -> None:
    pg_server.sql(ROLES)


@pytest.fixture
def team(pg_db: PgDatabase, tmp_path: Path, roles: None) -> Team:
    marks = tmp_path / "marks"
    marks.mkdir()
    labs = {}
    for login in ("alice", "bob", "carol", "dave", "mallory"):
        (tmp_path / login).mkdir()
        (tmp_path / f"{login}-home").mkdir()
        labs[login] = Lab(tmp_path / login, tmp_path / f"{login}-home")
    labs["alice"].write(book(marks))
    return Team(pg_db, labs, marks)


def test_only_another_operator_of_the_role_approves_and_the_database_refuses_the_rest(team: Team) -> None:
    running = team.start()
    run_id = team.waiting()
    listed = team.lab("bob").run(task="approvals", env=team.env("bob"))
    assert run_id in listed.stdout and "restore" in listed.stdout and "alice" in listed.stdout, listed.stdout
    assert f"runbook approve {run_id} restore" in listed.stdout
    sha = team.db.sql(f"SELECT sha256 FROM runbook.approval_requests WHERE run_id = '{run_id}'")
    # the client bypassed: alice inserts an approval naming bob; the database refuses it (and would rewrite
    # the approver to her own login anyway)
    direct = (
        "INSERT INTO runbook.approvals (run_id, step, sha256, verdict, approver) "
        f"VALUES ('{run_id}', 'restore', '{sha}', 'approved', 'bob')"
    )
    with pytest.raises(RuntimeError, match="four eyes: alice asked for this approval"):
        team.db.sql(direct, user="alice")
    refused = team.approve("alice", run_id, "--yes")
    assert refused.returncode == 2 and "four eyes: alice asked" in refused.stderr, refused.stderr
    with pytest.raises(RuntimeError, match="permission denied"):
        team.db.sql(direct, user="mallory")
    outsider = team.approve("dave", run_id, "--yes")
    assert outsider.returncode == 2 and "dave is not a member of dba" in outsider.stderr, outsider.stderr
    assert not (team.marks / "restored").exists()
    given = team.approve("bob", run_id, "--yes", "--comment", "snapshot name checked")
    assert given.returncode == 0, given.stdout + given.stderr
    assert "approved by bob" in given.stdout and f"document sha256 {sha}" in given.stdout
    code, out, err = running.finish()
    assert code == 0, out + err
    assert "approved by bob: going on" in out and (team.marks / "restored").read_text() == "prod\n"
    again = team.approve("bob", run_id, "--yes")
    assert again.returncode == 2 and "bob already answered this document" in again.stderr, again.stderr
    [approval] = team.journal(run_id, "approval")
    assert (approval["approver"], approval["verdict"], approval["sha256"]) == ("bob", "approved", sha)
    assert approval["proof"] == "database login bob" and approval["comment"] == "snapshot name checked"
    shown = team.lab("carol").run(run_id, task="runs", env=team.env("carol"))
    assert "approval: approved" in shown.stdout and "by bob at" in shown.stdout, shown.stdout
    assert "database login bob" in shown.stdout


def test_two_of_n_waits_for_the_second_distinct_approver(team: Team) -> None:
    team.lab("alice").write(book(team.marks, required="2"))
    running = team.start()
    run_id = team.waiting()
    assert team.approve("bob", run_id, "--yes").returncode == 0
    assert team.approve("bob", run_id, "--yes").returncode == 2  # bob once only
    assert running.process.poll() is None and not (team.marks / "restored").exists()
    assert team.approve("carol", run_id, "--yes").returncode == 0
    approved = time.monotonic()
    wait_for((team.marks / "restored").exists, "the run to go on after the second approval")
    print(f"the waiting run ran the step {time.monotonic() - approved:.3f}s after the approval")  # NOTIFY
    code, out, err = running.finish()
    assert code == 0 and "approved by bob, carol: going on" in out, out + err
    assert sorted(a["approver"] for a in team.journal(run_id, "approval")) == ["bob", "carol"]


def test_a_rejection_stops_the_run_before_the_step(team: Team) -> None:
    running = team.start()
    run_id = team.waiting()
    rejected = team.approve("carol", run_id, "--yes", "--reject", "--comment", "wrong snapshot")
    assert rejected.returncode == 0, rejected.stderr
    code, out, err = running.finish()
    assert code == 1 and "rejected by carol: wrong snapshot" in err, out + err
    assert not (team.marks / "restored").exists()
    assert team.db.sql(f"SELECT status FROM runbook.runs WHERE run_id = '{run_id}'") == "declined"
    assert [a["verdict"] for a in team.journal(run_id, "approval")] == ["rejected"]


def test_a_timeout_stops_the_run_resumably_and_a_later_approval_counts(team: Team) -> None:
    team.lab("alice").write(book(team.marks, timeout="1s"))
    code, out, err = team.start().finish()
    assert code == 1 and "0 of 1 approval(s) within the approval timeout" in err, out + err
    run_id = team.db.sql("SELECT run_id FROM runbook.runs")
    assert team.db.sql(f"SELECT status FROM runbook.runs WHERE run_id = '{run_id}'") == "awaiting-approval"
    assert team.approve("bob", run_id, "--yes").returncode == 0  # still pending: it can be approved
    resumed = team.resume(run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "approved by bob: going on" in resumed.stdout and (team.marks / "restored").exists()


def test_ctrl_c_while_waiting_leaves_it_resumable_and_the_approval_still_counts(team: Team) -> None:
    running = team.start()
    run_id = team.waiting()
    code, out, err = running.stop(signal.SIGINT)
    assert code == 130 and f"--resume {run_id}" in out, out + err
    assert team.approve("carol", run_id, "--yes").returncode == 0
    resumed = team.resume(run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "approved by carol: going on" in resumed.stdout


def test_a_value_changed_on_resume_voids_the_approval(team: Team) -> None:
    running = team.start()
    run_id = team.waiting()
    running.stop(signal.SIGINT)
    assert team.approve("bob", run_id, "--yes").returncode == 0  # of target=prod
    again = team.start("--resume", run_id, "--var", "target=staging")
    seen = read_until_text(again, "answer(s) about another version of this step do not apply")
    requests = f"SELECT count(*) FROM runbook.approval_requests WHERE run_id = '{run_id}'"
    assert team.db.sql(requests) == "2"  # a new request: of the document with target=staging
    assert team.db.sql(f"{requests} AND closed IS NULL") == "1"  # the old one closed
    code, out, err = again.stop(signal.SIGINT)
    assert code == 130, seen + out + err
    assert not (team.marks / "restored").exists()
    assert [a["approver"] for a in team.journal(run_id, "approval")] == []  # bob's never applied


def test_without_a_notification_the_run_still_goes_on_by_polling(team: Team) -> None:
    team.db.sql("DROP TRIGGER approvals_notify ON runbook.approvals")  # no NOTIFY reaches the waiting run
    running = team.start()
    run_id = team.waiting()
    assert team.approve("bob", run_id, "--yes").returncode == 0
    approved = time.monotonic()
    wait_for((team.marks / "restored").exists, "the run to see the approval by polling")
    print(f"polling: the waiting run ran the step {time.monotonic() - approved:.3f}s after the approval")
    code, out, err = running.finish()
    assert code == 0 and "approved by bob: going on" in out, out + err


MANUAL = """\
runbook: 1
name: fe
version: "1"
title: Four eyes on a manual step
steps:
  - id: restore
    title: Restore by hand
    manual: Restore the snapshot from the console.
    approval: {required: 1}
"""


def test_a_manual_step_waits_for_its_approval_too(team: Team) -> None:
    team.lab("alice").write(MANUAL)
    running = team.start("--confirm-manual")
    run_id = team.waiting()
    assert team.approve("dave", run_id, "--yes").returncode == 0  # no from: any other operator
    code, out, err = running.finish()
    assert code == 0 and "approved by dave: going on" in out, out + err
    kinds = team.db.sql(f"SELECT type FROM runbook.records WHERE run_id = '{run_id}' ORDER BY seq").split()
    assert kinds.index("approval") < kinds.index("manual")


def test_a_team_database_at_v1_is_upgraded_to_the_approvals(pg_server: PgServer) -> None:
    import psycopg

    from engine.state.postgres.schema import MIGRATIONS, migrate

    pg_server.sql('CREATE DATABASE "upgrade_v1"')
    try:
        with psycopg.connect(pg_server.url("postgres", "upgrade_v1"), autocommit=True) as connection:
            connection.execute(MIGRATIONS[0].encode())  # what the engine before four eyes left
            connection.execute(
                "INSERT INTO runbook.meta (version, operators) VALUES (1, 'runbook_operators')"
            )
            connection.execute("GRANT DELETE ON runbook.runs TO runbook_operators")  # an older grant
            assert migrate(connection) == (1, len(MIGRATIONS))
        privileges = pg_server.sql(
            "SELECT has_table_privilege('bob', 'runbook.approvals', 'INSERT'), "
            "has_table_privilege('bob', 'runbook.approvals', 'UPDATE'), "
            "has_table_privilege('mallory', 'runbook.approvals', 'INSERT'), "
            "has_table_privilege('bob', 'runbook.runs', 'DELETE')",
            "upgrade_v1",
        )
        assert privileges == "t|f|f|f"  # operators insert approvals, nobody edits one, outsiders do nothing
    finally:
        pg_server.sql('DROP DATABASE IF EXISTS "upgrade_v1" WITH (FORCE)')


def test_a_from_role_the_database_does_not_know_stops_before_the_step(team: Team) -> None:
    team.lab("alice").write(book(team.marks, roles="[dba, dbas]"))
    code, out, err = team.start().finish()
    assert code == 2 and "approval.from names no role of postgresql" in err and ": dbas (nobody" in err, (
        out + err
    )
    assert (team.marks / "before").exists() and not (team.marks / "restored").exists()


def _request(run_id: str) -> Request:
    return Request(run_id=run_id, step="restore", runbook="book", sha256="cafe", document="{}", required=1)


def test_a_connection_lost_while_asking_is_resumable_not_a_bug(pg_db: PgDatabase, tmp_path: Path) -> None:
    """Every statement of `request` (the `from:` roles' check first) turns a dropped connection into the
    resumable JournalError, never a raw driver error (exit 70)."""
    from engine.errors import JournalError
    from engine.state.postgres.backend import PostgresState

    desk = PostgresState(pg_db.url("alice"), tmp_path).approvals()
    assert pg_db.server.terminate(f"pid = {desk.connection.info.backend_pid}", pg_db.name) == 1
    with pytest.raises(JournalError, match=r"approvals' connection to .* was lost"):
        desk.request(_request("R_1"))
    desk.close()


def test_a_run_id_prefix_with_an_underscore_names_only_that_run(pg_db: PgDatabase, tmp_path: Path) -> None:
    """`approve R_1 …`: `_` (and `%`, `\\`) are taken literally, as `runs` takes them."""
    import psycopg

    from engine.state.postgres import history
    from engine.state.postgres.backend import PostgresState

    backend = PostgresState(pg_db.url("alice"), tmp_path)
    for run_id in ("RX1", "R_1b"):
        backend.start("book", {"type": "run", "run_id": run_id, "runbook": {"name": "book"}}, "").close()
    desk = backend.approvals()
    desk.request(_request("RX1"))
    assert desk.find("R_1", "restore") is None and desk.find("RX", "restore") is not None
    desk.request(_request("R_1b"))
    found = desk.find("R_1", "restore")
    assert found is not None and found.run_id == "R_1b"
    assert desk.find("R%", "restore") is None and desk.find("R\\", "restore") is None
    with psycopg.connect(pg_db.url("alice")) as connection:
        assert history.matching(connection, "R_") == ["R_1b"]
    desk.close()
    backend.close()
