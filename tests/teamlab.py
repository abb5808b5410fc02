"""Two operators' workstations on one PostgreSQL database, for the team-state tests: alice and bob, each
with a working directory and a HOME of their own, run one runbook of local steps that leave marks in a shared
directory (`hold` waits for `release`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pgserver import PgDatabase

from engine.state.postgres.schema import NAMESPACE
from runbooks import Lab, Running

STEPS = """\
  - id: first
    title: First
    run: echo once >> {marks}/first
  - id: hold
    title: Hold until released
    run: |
      echo $$ > {marks}/hold.pid
      touch {marks}/hold.started
      i=0; while [ ! -e {marks}/release ] && [ $i -lt 6000 ]; do sleep 0.05; i=$((i+1)); done
  - id: last
    title: Last
    run: touch {marks}/last
"""


def team_runbook(marks: Path) -> str:
    head = 'runbook: 1\nname: team\nversion: "1"\ntitle: Team rollback\nsteps:\n'
    return head + STEPS.format(marks=marks)


@dataclass(frozen=True)
class Team:
    """Two workstations on one database, a directory of marks their steps leave, and the runbook."""

    db: PgDatabase
    alice: Lab
    bob: Lab
    marks: Path

    def station(self, login: str) -> Lab:
        return self.alice if login == "alice" else self.bob

    def env(self, login: str, **extra: str) -> dict[str, str]:
        return {"RUNBOOK_STATE": self.db.url(login, **extra)}

    def start(self, login: str, *args: str, url: str | None = None) -> Running:
        lab = self.station(login)
        env = {"RUNBOOK_STATE": url} if url else self.env(login)
        return lab.start(lab.book, "--yes", *args, env=env)

    def run(self, login: str, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        lab = self.station(login)
        return lab.run(lab.book, "--yes", *args, env={"RUNBOOK_STATE": url} if url else self.env(login))

    def mark(self, name: str) -> Path:
        return self.marks / name

    def run_id(self) -> str:
        return self.db.sql("SELECT run_id FROM runbook.runs ORDER BY started DESC LIMIT 1")

    def lock_held(self) -> bool:
        return (
            self.db.sql(
                f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {NAMESPACE}"
            )
            != "0"
        )

    def release(self) -> None:
        self.mark("release").touch()


def make_team(pg_db: PgDatabase, tmp_path: Path) -> Team:
    """alice's and bob's workstations under `tmp_path`, the runbook written in each."""
    marks = tmp_path / "marks"
    marks.mkdir()
    labs = []
    for login in ("alice", "bob"):
        root, home = tmp_path / login, tmp_path / f"{login}-home"
        root.mkdir()
        home.mkdir()
        lab = Lab(root, home)
        lab.write(team_runbook(marks))
        labs.append(lab)
    return Team(pg_db, labs[0], labs[1], marks)
