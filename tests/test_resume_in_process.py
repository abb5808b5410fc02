"""engine/resume.py in process: which run is resumed, what its journal says finished, and a changed runbook.

The crash, kill and signal scenarios against sshd are in test_resume.py; here the decisions, on journals
written by `engine.journal`'s own record builders.
"""

from __future__ import annotations

from datetime import UTC, datetime
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


def looped(state: Path, items: list[str], *events: dict[str, object]) -> resume.Previous:
    """A run of a loop over `items` (journaled with the header), resumed."""
    header = {"type": "run", "run_id": "r", "runbook": {"name": "book"}, "loops": {"rot": items}}
    with Journal.create(state, header, "r") as journal:
        for event in events:
            journal.append(event)
    return resume.find(FileState(state), "book", "r")


def test_forced_other_items_keep_their_outcomes_by_value_and_an_unknown_one_must_stay(tmp_path: Path) -> None:
    previous = looped(
        tmp_path,
        ["a", "b", "a"],
        records.step_start("rot[1]", "n1", 1),
        end("rot[1]", "n1", Status.OK),
        records.step_start("rot[2]", "n1", 1),  # no end: unknown
    )
    assert resume.match_items(previous, {"rot": ["a", "b", "a"]}, force=False) is previous
    with pytest.raises(UsageError, match=r'the loop items changed .* rot: new "c"'):
        resume.match_items(previous, {"rot": ["c", "a", "b", "a"]}, force=False)
    moved = resume.match_items(previous, {"rot": ["c", "a", "b", "a"]}, force=True)
    assert {key: moved.status(key) for key in moved.hosts} == {
        ("rot[2]", "n1"): Status.OK,  # the first "a"
        ("rot[3]", "n1"): Status.UNKNOWN,  # "b"
    }
    assert moved.done(("rot[2]", "n1"), "why").step == "rot[2]"
    with pytest.raises(UsageError, match=r"the outcome of rot\[2\]@n1 is unknown .* keep its item"):
        resume.match_items(previous, {"rot": ["a", "a"]}, force=True)


def test_an_open_series_of_attempts_carries_its_count_and_its_deadline_start(tmp_path: Path) -> None:
    start = records.step_start("s", "n1", 1) | {"time": "2026-01-01T00:00:00.000Z"}
    failed = records.step_end(HostOutcome("s", "n1", Status.FAILED, attempts=1), last=False)
    second = records.step_start("s", "n1", 2)  # cut: a crash, no end
    previous = looped(tmp_path, [], start, failed, second)
    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    assert previous.carried(("s", "n1"), None, now) == resume.Carried(1, 60.0)  # attempt 2 is made again
    assert previous.carried(("s", "n1"), 600.0, now) == resume.Carried(1, 60.0)
    passed = previous.carried(("s", "n1"), 30.0, now)
    assert (passed.made, passed.note.startswith("its deadline (30s from the first attempt) passed")) == (
        0,
        True,
    )
    assert previous.carried(("other", "n1"), None, now) == resume.Carried()


def test_a_series_that_ended_starts_afresh(tmp_path: Path) -> None:
    last = records.step_end(HostOutcome("s", "n1", Status.FAILED, attempts=3), last=True)
    previous = looped(tmp_path, [], records.step_start("s", "n1", 3), last)
    assert previous.carried(("s", "n1"), None) == resume.Carried()
