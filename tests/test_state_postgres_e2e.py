"""The team state on a real PostgreSQL server, end to end, as a team would try it: two workstations (two
working directories, two HOMEs, two database logins: alice and bob) run one runbook of local steps.

The faults of issue 21: the holder killed (the lock is free at once; the other workstation resumes the run),
its session terminated or the server restarted (the run starts no further step), its network silently cut
(the lock is free within the keepalive bound; the run stops before its next step), the database unreachable
(exit 3, nothing ran), two starts at once (exactly one runs), a login that is not an operator (refused), and
no secret in a `pg_dump` afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netcut import Workstation, workstation
from pgserver import PgDatabase, PgServer, cluster_directory, free_port, migrate_as_superuser
from teamlab import Team, make_team

from engine.state.postgres.schema import NAMESPACE
from runbooks import Nodes, Running, nodes_runbook, operator_lab, wait_for


@pytest.fixture
def team(pg_db: PgDatabase, tmp_path: Path) -> Team:
    return make_team(pg_db, tmp_path)


def kill_step(team: Team) -> None:
    """The step's shell dies with the workstation too."""
    pid = int(team.mark("hold.pid").read_text())
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_a_killed_holder_frees_the_lock_at_once_and_another_workstation_resumes(team: Team) -> None:
    first = team.start("alice")
    wait_for(team.mark("hold.started").exists, "alice's run to reach its holding step")
    assert team.lock_held()
    run_id = team.run_id()
    refused = team.run("bob")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "runbook 'team' is being run by alice (OS user " in refused.stderr
    assert f"run {run_id}" in refused.stderr and "(for 0m" in refused.stderr
    killed = time.monotonic()
    first.process.kill()
    first.finish()
    kill_step(team)
    wait_for(lambda: not team.lock_held(), "the server to free the killed holder's lock")
    print(f"lock free {time.monotonic() - killed:.3f}s after SIGKILL")
    team.release()
    resumed = team.run("bob", "--resume", run_id, "--rerun-unknown")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert team.mark("last").exists() and team.mark("first").read_text() == "once\n"
    logins = team.db.sql(
        f"SELECT string_agg(DISTINCT login, ',') FROM runbook.records WHERE run_id = '{run_id}'"
    )
    assert logins == "alice,bob"
    took = team.db.sql("SELECT login, body->>'taken_over' FROM runbook.records WHERE type = 'resumed'")
    assert took.startswith("bob|alice (OS user ") and f"run {run_id}" in took  # who took over from whom
    assert team.db.sql(f"SELECT status FROM runbook.runs WHERE run_id = '{run_id}'") == "ok"
    filled = team.alice.run(team.alice.book, "--journal", run_id, task="checklist", env=team.env("alice"))
    assert filled.returncode == 0, filled.stderr
    assert "- [x]" in filled.stdout and run_id in filled.stdout  # the checklist filled from the shared run


def test_a_terminated_lock_session_starts_no_further_step(team: Team) -> None:
    first = team.start("alice")
    wait_for(team.mark("hold.started").exists, "alice's run to reach its holding step")
    assert team.db.server.terminate("usename = 'alice'", team.db.name) >= 1
    team.release()
    code, out, err = first.finish()
    assert code != 0, out + err
    assert "lost the lock of runbook 'team'" in out + err
    assert not team.mark("last").exists()
    run_id = team.run_id()
    listed = team.bob.run(task="runs", env=team.env("bob"))  # the shared history, from the other workstation
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if run_id in line]
    assert "team" in row and "alice (" in row and "interrupted" in row  # its ending recorded once back
    ending = team.db.sql(
        f"SELECT string_agg(type || ':' || coalesce(body->>'signal', body->>'status'), ',' ORDER BY seq) "
        f"FROM runbook.records WHERE run_id = '{run_id}' AND type IN ('interrupted', 'run-end')"
    )
    assert ending == "interrupted:lock lost,run-end:interrupted"
    resumed = team.run("bob", "--resume", run_id, "--rerun-unknown")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert team.mark("last").exists()
    shown = team.bob.run("--format", "json", task="runs", env=team.env("bob"))
    [run] = json.loads(shown.stdout)["runs"]
    assert run["run_id"] == run_id and run["status"] == "ok" and run["user"].startswith("alice (")
    steps = team.bob.run(run_id, task="runs", env=team.env("bob"))
    assert steps.returncode == 0 and "hold" in steps.stdout and "last" in steps.stdout, steps.stdout
    page = team.bob.run(run_id, "--format", "html", task="runs", env=team.env("bob"))  # the timeline
    assert page.returncode == 0 and run_id in page.stdout and "<html" in page.stdout, page.stderr


def test_a_server_restart_mid_run_starts_no_further_step(team: Team, pg_server: PgServer) -> None:
    first = team.start("alice")
    wait_for(team.mark("hold.started").exists, "alice's run to reach its holding step")
    pg_server.restart()
    team.release()
    code, out, err = first.finish()
    assert code != 0, out + err
    assert "lost the lock of runbook 'team'" in out + err
    assert not team.mark("last").exists()


def test_an_unreachable_database_is_a_clear_error_and_nothing_runs(team: Team) -> None:
    url = f"postgresql://alice@127.0.0.1:{free_port()}/nowhere"
    done = team.run("alice", url=url)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot reach the state database (postgresql 127.0.0.1:" in done.stderr
    assert not team.mark("first").exists()


def test_a_login_that_is_not_an_operator_is_refused_and_nothing_runs(team: Team) -> None:
    done = team.run("alice", url=team.db.url("mallory"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "login 'mallory' is not a runbook operator" in done.stderr
    assert not team.mark("first").exists()
    assert team.db.sql("SELECT count(*) FROM runbook.runs") == "0"


def test_two_workstations_starting_at_the_same_instant_exactly_one_runs(team: Team) -> None:
    started = [team.start("alice"), team.start("bob")]
    wait_for(team.mark("hold.started").exists, "one run to reach its holding step")
    wait_for(lambda: any(run.process.poll() is not None for run in started), "the other run to be refused")
    team.release()
    ended = [run.finish() for run in started]
    assert sorted(code for code, _, _ in ended) == [0, 2], ended
    refused = next(out + err for code, out, err in ended if code == 2)
    assert "is being run by" in refused
    assert team.mark("first").read_text() == "once\n"
    assert team.db.sql("SELECT count(*) FROM runbook.runs") == "1"


SECRET_STEPS = """\
  - id: leak
    title: Try every way to show the secret
    run: |
      echo "token={{ token }}"
      echo {{ token }} >&2
      printf %s {{ token }} | base64
      echo {{ token }} | base64
      printf %s {{ token }} | python3 -c "import sys, urllib.parse as u; print(u.quote(sys.stdin.read(), safe=''))"
      exit 1
"""


def test_pg_dump_after_runs_with_secrets_holds_no_secret(team: Team) -> None:
    from test_secrets_e2e import TOKEN, TOKEN_ENV, leaks

    head = 'runbook: 1\nname: secrets\nversion: "1"\ntitle: Secrets\n'
    variables = "variables:\n  token: {type: string, secret: true, required: true}\n"
    team.alice.write(head + variables + "steps:\n" + SECRET_STEPS)
    env = {**team.env("alice"), **TOKEN_ENV}
    done = team.alice.run(team.alice.book, "--yes", env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # the step failed: its tails are journaled
    dump = team.db.server.dump(team.db.name)
    assert "Try every way to show the secret" in dump and "token=********" in dump
    assert leaks(dump) == []
    assert TOKEN not in dump


@pytest.fixture
def cut_network_server() -> Iterator[tuple[PgServer, Workstation]]:
    """A server of its own that also listens on a private link to a workstation in a network namespace."""
    station = workstation().create()
    server = PgServer(cluster_directory() / "cut", addresses=("127.0.0.1", station.host_address))
    try:
        server.init().start()
        server.create_roles()
        server.create_database("team")
        migrate_as_superuser(server, "team")
        yield server, station
    finally:
        try:
            server.stop("immediate")
        finally:
            station.delete()
            shutil.rmtree(server.directory.parent, ignore_errors=True)


def test_a_silently_cut_network_frees_the_lock_within_the_keepalive_bound(
    team: Team, cut_network_server: tuple[PgServer, Workstation]
) -> None:
    """Packets dropped both ways (no reset): the server ends the holder's session after the keepalive bound
    (here 1 s idle + 2 × 1 s probes, and tcp_user_timeout 3 s, set in the connection string; the default is
    40 s), which frees the lock; the run, which cannot write its next step-start, starts no further step."""
    server, station = cut_network_server
    keepalive = {
        "keepalives_idle": "1",
        "keepalives_interval": "1",
        "keepalives_count": "2",
        "tcp_user_timeout": "3000",
    }
    url = server.url("alice", "team", host=station.host_address, **keepalive)
    lab = team.alice
    process = subprocess.Popen(
        station.argv(*lab.argv("run", lab.book, "--yes")),
        cwd=lab.root,
        env=lab.env(RUNBOOK_STATE=url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = Running(process)
    held = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {NAMESPACE}"
    try:
        wait_for(team.mark("hold.started").exists, "the run to reach its holding step")
        assert server.sql(held, "team") == "1"
        station.cut()
        cut = time.monotonic()
        wait_for(lambda: server.sql(held, "team") == "0", "the server to drop the vanished holder", 60)
        print(f"lock free {time.monotonic() - cut:.1f}s after the cut")
        team.release()
        code, out, err = first.finish(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert code != 0, out + err
    assert "lost the lock of runbook 'team'" in out + err
    assert not team.mark("last").exists()
    # cut off, it could not record its end: the team sees it abandoned, never failed or running
    shared = {"RUNBOOK_STATE": server.url("bob", "team")}
    run_id = server.sql("SELECT run_id FROM runbook.runs", "team")
    listed = team.bob.run("--format", "json", task="runs", env=shared)
    assert [r["status"] for r in json.loads(listed.stdout)["runs"]] == ["abandoned"], listed.stderr
    shown = team.bob.run(run_id, task="runs", env=shared)
    assert "status: abandoned: its holder vanished (no run-end, no live lock)" in shown.stdout, shown.stderr


NODE_STEPS = """\
  - id: long
    title: A long command on the node
    on: nodes
    run: |
      if [ -s "$HOME/copies" ]; then ps -o pgid= -p $$ >> "$HOME/copies"; exit 0; fi
      ps -o pgid= -p $$ >> "$HOME/copies"
      n=0; while [ ! -e "$HOME/release" ] && [ $n -lt 6000 ]; do sleep 0.1; n=$((n+1)); done
  - id: after
    title: After it
    on: nodes
    run: touch "$HOME/after"
"""


@pytest.mark.ssh
def test_the_second_workstation_finds_the_first_ones_ssh_step_still_running(
    pg_db: PgDatabase, tmp_path: Path, sshd_nodes: Nodes
) -> None:
    """alice's workstation dies while her step runs on a node; bob's resume checks, from his workstation,
    the process group her run journaled, kills it (`--if-still-running kill`) and runs the step again."""
    [node] = sshd_nodes(1)
    text = nodes_runbook("team-ssh", NODE_STEPS, [node])
    alice, bob = (operator_lab(tmp_path / who, tmp_path / f"{who}-home", [node]) for who in ("alice", "bob"))
    for lab in (alice, bob):
        lab.write(text)
    copies = node.home / "copies"
    first = alice.start(alice.book, "--yes", env={"RUNBOOK_STATE": pg_db.url("alice")})
    wait_for(lambda: copies.exists() and copies.read_text().strip(), "alice's step to start on the node")
    pid = int(copies.read_text().split()[0])
    try:
        first.stop(signal.SIGKILL)
        run_id = pg_db.sql("SELECT run_id FROM runbook.runs")
        resumed = bob.run(
            bob.book,
            "--yes",
            "--resume",
            run_id,
            "--if-still-running",
            "kill",
            "--rerun-unknown",
            env={"RUNBOOK_STATE": pg_db.url("bob")},
        )
    finally:
        (node.home / "release").touch()
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output
    assert f"process group {pid} from the resumed run is STILL RUNNING" in output
    assert len(copies.read_text().split()) == 2 and (node.home / "after").exists()
