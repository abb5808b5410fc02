"""engine/resume.py in process: which run is resumed, what its journal says finished, and a changed runbook.

The crash, kill and signal scenarios against sshd are in test_resume.py; here the decisions, on journals
written by `engine.journal`'s own record builders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import records, resume
from engine.errors import UsageError
from engine.journal import Journal
from engine.outcomes import HostOutcome, RunStatus, Status
from engine.planning import sha256_text
from engine.state.files import FileState

TEXT = "runbook: 1\nname: book\n"


def write_run(state: Path, run_id: str, *events: dict[str, object], name: str = "book") -> Path:
    header = {
        "type": "run",
        "run_id": run_id,
        "runbook": {"name": name, "sha256": sha256_text(TEXT)},
        "variables": {"release": "1.4.2"},
    }
    with Journal.create(state, header, run_id) as journal:
        for event in events:
            journal.append(event)
        (journal.directory / "runbook.yml").write_text(TEXT)
        return journal.directory


def end(step: str, host: str, status: Status) -> dict[str, object]:
    return records.step_end(HostOutcome(step, host, status))


def test_the_latest_unfinished_run_is_found_with_its_outcomes_and_values(tmp_path: Path) -> None:
    write_run(tmp_path, "20260101T000000Z-aaaaaa", records.run_end(RunStatus.OK, 0))
    write_run(
        tmp_path,
        "20260102T000000Z-bbbbbb",
        records.step_start("a", "n1", 1),
        end("a", "n1", Status.OK),
        records.step_start("b", "n1", 1),
        end("b", "n1", Status.TIMED_OUT),
        records.step_start("c", "n1", 1),  # no end: unknown
        records.step_start("d", "n1", 1),
        end("d", "n1", Status.INTERRUPTED),  # cut short: as unknown as a crash
        records.run_end(RunStatus.INTERRUPTED, 130),
    )
    previous = resume.find(FileState(tmp_path), "book", resume.LATEST)
    assert previous.run_id == "20260102T000000Z-bbbbbb" and previous.values == {"release": "1.4.2"}
    assert {key: previous.status(key) for key in previous.hosts} == {
        ("a", "n1"): Status.OK,
        ("b", "n1"): Status.TIMED_OUT,
        ("c", "n1"): Status.UNKNOWN,
        ("d", "n1"): Status.UNKNOWN,
    }
    assert previous.report("abcd") == [
        "resuming run 20260102T000000Z-bbbbbb",
        "  finished, not run again: a@n1",
        "  failed, run again: b@n1",
        "  outcome unknown (started, never finished well), asked before running again: c@n1, d@n1",
    ]


def test_runs_that_cannot_be_resumed_are_refused_with_why(tmp_path: Path) -> None:
    write_run(tmp_path, "r-ok", records.run_end(RunStatus.OK, 0))
    write_run(tmp_path, "r-other", name="another")
    with pytest.raises(UsageError, match="no unfinished run of 'book'"):
        resume.find(FileState(tmp_path), "book", resume.LATEST)
    with pytest.raises(UsageError, match="that run finished well; there is nothing to resume"):
        resume.find(FileState(tmp_path), "book", "r-ok")
    with pytest.raises(UsageError, match="that run is of 'another', not 'book'"):
        resume.find(FileState(tmp_path), "book", "r-other")
    with pytest.raises(UsageError, match="--resume r-none: no such run"):
        resume.find(FileState(tmp_path), "book", "r-none")


def test_a_changed_runbook_is_refused_with_its_diff_unless_forced(tmp_path: Path) -> None:
    write_run(tmp_path, "r1")
    previous = resume.find(FileState(tmp_path), "book", "r1")
    assert resume.check_unchanged(previous, TEXT, force=False) is None
    changed = TEXT + "title: new\n"
    with pytest.raises(UsageError, match="the runbook changed since run r1 began") as refused:
        resume.check_unchanged(previous, changed, force=False)
    assert "+title: new" in str(refused.value)
    diff = resume.check_unchanged(previous, changed, force=True)
    assert diff is not None and "+title: new" in diff
