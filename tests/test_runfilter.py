"""Which runs `runs` lists and `runs prune` deletes, on the files (the PostgreSQL side is in
tests/test_state_postgres.py), and which backend a `--state` names."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import records
from engine.errors import UsageError
from engine.runfilter import RunFilter, age, moment
from engine.state import open_state
from engine.state.files import FileState
from engine.state.options import StateOptions


def test_ages_and_moments() -> None:
    assert (
        age("90d") == timedelta(days=90)
        and age("2w") == timedelta(weeks=2)
        and age("30m") == timedelta(minutes=30)
    )
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert moment("7d", now) == datetime(2026, 11, 29, tzinfo=UTC)
    assert moment("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert moment("2026-12-01T03:00Z") == datetime(2026, 12, 1, 3, tzinfo=UTC)
    with pytest.raises(UsageError, match="--older-than '90': expected a number and a unit"):
        age("90")
    with pytest.raises(UsageError, match="--since 'yesterday': expected a date"):
        moment("yesterday")


def _run(state: FileState, run_id: str, book: str, ending: str | None) -> None:
    header = records.run(
        run_id,
        records.RunbookRef(name=book, version="1", sha256="abc", path="book.yml"),
        (),
        {},
        {},
        platform="linux",
        engine_version="0",
        user="someone",
        hostname="here",
        pid=1,
        argv=(),
    )
    writer = state.start(book, header, "")
    if ending is not None:
        writer.append(records.run_end(ending, 0))  # type: ignore[arg-type]
    writer.close()


def test_the_files_filter_and_prune_like_the_database(tmp_path: Path) -> None:
    state = FileState(tmp_path / "state")
    _run(state, "20261001T000000Z-aaaaaa", "book", "ok")
    _run(state, "20261201T000000Z-bbbbbb", "other", None)
    old = state.state_dir / "runs" / "20261001T000000Z-aaaaaa" / "journal.jsonl"
    lines = old.read_text().splitlines()
    lines[0] = lines[0].replace(lines[0].split('"time": "')[1].split('"')[0], "2026-10-01T00:00:00.000Z")
    old.write_text("\n".join(lines) + "\n")

    def ids(**where: object) -> list[str]:
        return [run.run_id[-6:] for run in state.runs(where=RunFilter(**where))]  # type: ignore[arg-type]

    assert (
        ids() == ["bbbbbb", "aaaaaa"] and ids(runbook="book") == ["aaaaaa"] and ids(status="ok") == ["aaaaaa"]
    )
    assert ids(user="someone") == ["bbbbbb", "aaaaaa"] and ids(user="nobody") == []
    assert ids(since=datetime(2026, 11, 1, tzinfo=UTC)) == ["bbbbbb"]
    assert ids(run_id="20261001T000000Z-aaaaaa") == ["aaaaaa"] and ids(run_id="nope") == []
    assert state.prune(datetime.now(UTC) - datetime(2026, 11, 1, tzinfo=UTC)) == 1
    assert ids() == ["bbbbbb"]


def test_a_state_spec_chooses_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_STATE", raising=False)
    assert type(open_state(None, tmp_path)).__name__ == "FileState"
    monkeypatch.setenv("RUNBOOK_STATE", "service=team")
    assert type(open_state(None, tmp_path)).__name__ == "PostgresState"  # nothing connects until it is used
    assert type(open_state("", tmp_path)).__name__ == "FileState"  # an empty --state: the files
    assert type(open_state("postgresql://db/x", tmp_path)).__name__ == "PostgresState"
    with pytest.raises(UsageError, match="not a PostgreSQL connection string"):
        open_state("/var/lib/runbook", tmp_path)
    assert os.environ["RUNBOOK_STATE"] == "service=team"


@pytest.mark.parametrize(
    "spec",
    [
        "postgresql://alice:pw@db/team",
        "postgres://alice:pw@db:5432/team",
        "host=db password=pw",
        "postgresql://alice@db/team?password=pw",
        "dbname=team PASSWORD = pw",
    ],
)
def test_a_password_in_state_on_the_command_line_is_refused(spec: str) -> None:
    with pytest.raises(UsageError, match="--state: a password on the command line is visible"):
        StateOptions(state=spec)


@pytest.mark.parametrize("spec", ["postgresql://alice@db/team", "service=team", "host=db user=alice", ""])
def test_a_state_without_a_password_is_taken(spec: str) -> None:
    assert StateOptions(state=spec).state == spec
