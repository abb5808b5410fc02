from __future__ import annotations

import enum
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine import records, resume
from engine import runs as runs_module
from engine.errors import JournalError, UsageError
from engine.history import fold
from engine.journal import Journal, default_state_dir, new_run_id, read_journal, safe_filename, scan_journal
from engine.runs import list_runs, newest
from engine.state.files import FileState

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def header(
    name: str = "deploy", time: str | None = None, run_id: str = "20261126T113722Z-abcdef"
) -> dict[str, Any]:
    runbook = records.RunbookRef(name=name, version="1.2", sha256="ab" * 32, path=f"{name}.yaml")
    built = records.run(
        run_id,
        runbook,
        [],
        {"token": "********"},
        {},
        platform="linux",
        engine_version="0",
        user="ann",
        hostname="jump-1",
        pid=1,
        argv=[],
    )
    return built | ({"time": time} if time else {})


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.create(tmp_path, header(), run_id="20261126T113722Z-abcdef")


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count calls to os.<name> while still calling the real one: observation only, the OS does the work."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(os, name)

    def wrapper(fd: int, *args: Any) -> Any:
        calls.append(fd)
        return real(fd, *args)

    monkeypatch.setattr(os, name, wrapper)
    return calls


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNBOOK_STATE_DIR", raising=False)
    assert default_state_dir(tmp_path) == tmp_path / ".runbook"
    monkeypatch.setenv("RUNBOOK_STATE_DIR", "/var/lib/runbook")
    assert default_state_dir(tmp_path) == Path("/var/lib/runbook")
    monkeypatch.setenv("RUNBOOK_STATE_DIR", "state")
    assert default_state_dir(tmp_path) == tmp_path / "state"


def test_run_ids_sort_by_time_and_are_utc() -> None:
    early = new_run_id(datetime(2026, 11, 26, 11, 37, 22, tzinfo=UTC))
    assert re.fullmatch(r"20261126T113722Z-[0-9a-f]{6}", early)
    assert early < new_run_id(datetime(2026, 11, 26, 11, 37, 23))
    assert new_run_id() != new_run_id()


def test_create_writes_the_header(journal: Journal, tmp_path: Path) -> None:
    assert journal.directory == tmp_path / "runs" / "20261126T113722Z-abcdef"
    assert journal.path == journal.directory / "journal.jsonl"
    (record,) = read_journal(journal.path)
    assert record["type"] == "run" and record["run_id"] == journal.run_id
    assert record["runbook"]["name"] == "deploy" and TIME.match(record["time"])


def test_create_refuses_an_existing_run(journal: Journal, tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"cannot create run directory .*File exists"):
        Journal.create(tmp_path, header(), run_id=journal.run_id)


def test_append_writes_fsyncs_and_stamps(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs = counting(monkeypatch, "fsync")
    journal.append({"type": "step-start", "step": "migrate", "host": "db1", "attempt": 1})
    assert len(fsyncs) == 1
    journal.append({"type": "interrupted", "signal": "SIGINT", "time": "2026-11-26T11:40:00.000Z"})
    assert len(fsyncs) == 2
    records = read_journal(journal.path)
    assert records[1]["step"] == "migrate" and TIME.match(records[1]["time"])
    assert records[2]["time"] == "2026-11-26T11:40:00.000Z"


def test_append_serialises_paths_and_enums(journal: Journal) -> None:
    class Status(enum.Enum):
        OK = "ok"

    journal.append({"type": "step-end", "status": Status.OK, "path": Path("/tmp/x"), "secret": "é"})
    record = read_journal(journal.path)[-1]
    assert record["status"] == "ok" and record["path"] == "/tmp/x" and record["secret"] == "é"


def test_append_is_thread_safe(journal: Journal) -> None:
    def work(n: int) -> None:
        for i in range(50):
            journal.append(
                {"type": "step-start", "step": f"s{n}", "host": "h", "attempt": i, "pad": "x" * 500}
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(read_journal(journal.path)) == 1 + 8 * 50


def test_truncated_last_line_is_ignored_and_cut_on_reopen(journal: Journal, tmp_path: Path) -> None:
    journal.append({"type": "step-start", "step": "a", "host": "h", "attempt": 1})
    journal.close()
    with open(journal.path, "ab") as file:
        file.write(b'{"type": "step-end", "step": "a", "ho')
    scan = scan_journal(journal.path)
    assert scan.torn_tail and len(scan.records) == 2
    reopened = Journal.reopen(tmp_path, journal.run_id)
    reopened.append({"type": "resumed", "user": "ann", "pid": 1})
    assert [r["type"] for r in read_journal(journal.path)] == ["run", "step-start", "resumed"]
    assert not scan_journal(journal.path).torn_tail


def test_unparseable_last_line_is_ignored(journal: Journal) -> None:
    journal.close()
    with open(journal.path, "ab") as file:
        file.write(b"\0\0\0\0\n")
    scan = scan_journal(journal.path)
    assert scan.torn_tail and len(scan.records) == 1


def test_corrupt_middle_line_names_file_and_line(journal: Journal) -> None:
    journal.close()
    with open(journal.path, "ab") as file:
        file.write(b'{"type": "step-start"\n["not", "an object"]\n{"type": "run-end"}\n')
    with pytest.raises(JournalError, match=rf"^{re.escape(str(journal.path))}:2: corrupt journal line"):
        read_journal(journal.path)


def test_deleted_run_directory_stops_the_run(journal: Journal) -> None:
    shutil.rmtree(journal.directory)
    with pytest.raises(JournalError, match=r"cannot write journal .*journal.jsonl: .*deleted"):
        journal.append({"type": "step-start", "step": "a", "host": "h", "attempt": 1})
    with pytest.raises(JournalError, match=r"cannot open output file .*a@h.log: No such file or directory"):
        journal.output_file("a", "h")


def test_disk_full_stops_the_run_and_refuses_later_appends(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal.close()
    journal.path.unlink()
    journal.path.symlink_to("/dev/full")
    full = Journal.reopen(tmp_path, journal.run_id)
    with pytest.raises(
        JournalError, match=r"^cannot write journal .*journal.jsonl: No space left on device$"
    ):
        full.append({"type": "step-start", "step": "a", "host": "h", "attempt": 1})
    writes = counting(monkeypatch, "write")
    with pytest.raises(JournalError, match=r"No space left on device"):
        full.append({"type": "run-end", "status": "failed", "exit_code": 1})
    assert writes == []


def test_journal_that_is_a_directory_cannot_be_reopened(journal: Journal, tmp_path: Path) -> None:
    journal.close()
    journal.path.unlink()
    journal.path.mkdir()
    with pytest.raises(JournalError, match=r"Is a directory"):
        Journal.reopen(tmp_path, journal.run_id)


def test_state_dir_that_is_a_file_cannot_hold_runs(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(JournalError, match=r"Not a directory"):
        Journal.create(tmp_path / "state", header(run_id="r"), run_id="r")


def test_closed_journal_refuses_appends(journal: Journal) -> None:
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match=r"closed"):
        journal.append({"type": "run-end", "status": "ok", "exit_code": 0})


def test_output_file_lines(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    output = journal.output_file("migrate", "deploy@db1:22")
    assert journal.output_file("migrate", "deploy@db1:22") is output
    assert output.path.parent == journal.directory
    assert output.path.name.startswith("migrate@deploy_db1_22-") and output.path.name.endswith(".log")
    output.write_line("stdout", "hello\n")
    output.write_line("stderr", "two\nlines")
    fsyncs = counting(monkeypatch, "fsync")
    journal.close()
    assert len(fsyncs) == 1
    lines = output.path.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["[stdout] hello", "[stderr] two", "[stderr] lines"]
    assert all(TIME.match(line.split(" ", 1)[0]) for line in lines)


def test_output_file_reopens_for_a_rerun(journal: Journal) -> None:
    first = journal.output_file("a", "local")
    first.write_line("stdout", "attempt 1")
    first.close()
    second = journal.output_file("a", "local")
    assert second is not first
    second.write_line("stdout", "attempt 2")
    second.close()
    assert len(first.path.read_text().splitlines()) == 2


def test_output_file_on_a_full_disk(journal: Journal) -> None:
    (journal.directory / "a@local.log").symlink_to("/dev/full")
    output = journal.output_file("a", "local")
    with pytest.raises(
        JournalError, match=r"cannot write output file .*a@local.log: No space left on device"
    ):
        output.write_line("stdout", "x")


def test_safe_filename_keeps_distinct_names_apart() -> None:
    assert safe_filename("db1.example.com") == "db1.example.com"
    assert safe_filename("a/b") != safe_filename("a:b")
    assert "/" not in safe_filename("../../etc") and not safe_filename("..").startswith(".")


def write_run(state_dir: Path, run_id: str, name: str, started: str, *records: dict[str, Any]) -> None:
    with Journal.create(state_dir, header(name, started, run_id), run_id=run_id) as journal:
        for record in records:
            journal.append(record)


def test_list_runs_newest_first_with_statuses(tmp_path: Path) -> None:
    start = {"type": "step-start", "step": "a", "host": "h", "attempt": 1}
    end = {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-01-01T00:00:09.000Z"}
    write_run(tmp_path, "r1", "deploy", "2026-01-01T00:00:01.000Z", {"type": "run-end", "status": "ok"})
    write_run(tmp_path, "r2", "deploy", "2026-01-01T00:00:02.000Z", start, end)
    write_run(tmp_path, "r3", "other", "2026-01-01T00:00:03.000Z", start)
    write_run(tmp_path, "r4", "deploy", "2026-01-01T00:00:04.000Z", end, {"type": "resumed", "user": "ann"})
    (tmp_path / "runs" / "r5-crashed-before-header").mkdir()
    runs = list_runs(tmp_path)
    assert [(r.run_id, r.status) for r in runs] == [
        ("r4", "unfinished"),
        ("r3", "unfinished"),
        ("r2", "failed"),
        ("r1", "ok"),
    ]
    assert runs[2].finished == "2026-01-01T00:00:09.000Z" and runs[0].finished is None
    assert (runs[2].runbook, runs[2].version, runs[2].user) == ("deploy", "1.2", "ann")
    assert [r.run_id for r in list_runs(tmp_path, "deploy")] == ["r4", "r2", "r1"]
    assert list_runs(tmp_path / "nowhere") == []


def latest_unfinished(state_dir: Path, name: str) -> tuple[str, str | None] | None:
    """The run `--resume` continues (its id and how it ended), or None when there is none."""
    try:
        found = resume.find(FileState(state_dir), name, resume.LATEST)
    except UsageError:
        return None
    return found.run_id, found.history.status


def test_latest_unfinished_is_the_newest_run_unless_it_succeeded(tmp_path: Path) -> None:
    assert latest_unfinished(tmp_path, "deploy") is None
    write_run(tmp_path, "r1", "deploy", "2026-01-01T00:00:01.000Z")
    write_run(tmp_path, "r2", "other", "2026-01-01T00:00:02.000Z")
    assert latest_unfinished(tmp_path, "deploy") == ("r1", None)
    write_run(tmp_path, "r3", "deploy", "2026-01-01T00:00:03.000Z", {"type": "run-end", "status": "ok"})
    assert latest_unfinished(tmp_path, "deploy") is None
    write_run(
        tmp_path, "r4", "deploy", "2026-01-01T00:00:04.000Z", {"type": "run-end", "status": "interrupted"}
    )
    assert latest_unfinished(tmp_path, "deploy") == ("r4", "interrupted")


def _raw_run(state_dir: Path, run_id: str, text: str) -> None:
    directory = state_dir / "runs" / run_id
    directory.mkdir(parents=True)
    (directory / "journal.jsonl").write_text(text)


def _run_header(run_id: str, name: str, time: str | None) -> str:
    record: dict[str, Any] = {"type": "run", "run_id": run_id, "runbook": {"name": name}}
    return json.dumps(record | ({"time": time} if time is not None else {})) + "\n"


ENDED = json.dumps({"type": "run-end", "status": "ok", "time": "2026-01-02T00:00:00.000Z"}) + "\n"
# Journals that only a whole reading judges, each newer than the plain runs: the newest must not be taken
# from its header alone.
TRICKY = {
    "t-corrupt-middle": _run_header("t-corrupt-middle", "deploy", "2026-01-01T00:00:09.000Z")
    + "not json\n"
    + ENDED,
    "t-torn-header": _run_header("t-torn-header", "deploy", "2026-01-01T00:00:08.000Z").rstrip("\n"),
    "t-not-a-header": json.dumps({"type": "step-start", "runbook": {"name": "deploy"}}) + "\n",
    "t-no-time": _run_header("t-no-time", "deploy", None) + ENDED,  # ordered by its run id, as listed
    "t-same-time": _run_header("t-same-time", "deploy", "2026-01-01T00:00:03.000Z") + ENDED,
    "t-other-runbook": _run_header("t-other-runbook", "other", "2026-01-01T00:00:07.000Z"),
    "t-name-not-text": _run_header("t-name-not-text", "7", "2026-01-01T00:00:06.000Z").replace('"7"', "7"),
    "t-empty": "",
}


@pytest.mark.parametrize("tricky", [(), *((name,) for name in TRICKY), tuple(TRICKY)])
def test_newest_is_the_first_run_listed_while_reading_only_headers_and_one_journal(
    tmp_path: Path, tricky: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(1, 6):
        ending = ENDED if number % 2 else ""
        _raw_run(
            tmp_path,
            f"r{number}",
            _run_header(f"r{number}", "deploy", f"2026-01-01T00:00:0{number}.000Z") + ending,
        )
    (tmp_path / "runs" / "r0-crashed-before-header").mkdir()
    for name in tricky:
        _raw_run(tmp_path, name, TRICKY[name])
    for runbook in ("deploy", "other", "7", "missing"):
        listed = list_runs(tmp_path, runbook)
        for excluding in (None, *(r.run_id for r in listed[:2])):
            expected = [r for r in listed if r.run_id != excluding]
            assert newest(tmp_path, runbook, excluding) == (expected[0] if expected else None)
    first = list_runs(tmp_path, "deploy")[0]
    read: list[Path] = []
    original = runs_module.read_journal
    monkeypatch.setattr(runs_module, "read_journal", lambda path: read.append(path) or original(path))
    assert newest(tmp_path, "deploy") == first
    assert 1 <= len(read) <= 1 + ("t-corrupt-middle" in tricky)  # the newest readable one, not every run


def test_outcomes_fold_attempts_and_unknowns() -> None:
    def start(step: str, host: str, attempt: int = 1) -> dict[str, Any]:
        return {"type": "step-start", "step": step, "host": host, "attempt": attempt}

    def end(step: str, host: str, status: str, attempt: int = 1) -> dict[str, Any]:
        return {"type": "step-end", "step": step, "host": host, "status": status, "attempt": attempt}

    records = [
        {"type": "run", "run_id": "r"},
        start("a", "db1"),
        end("a", "db1", "ok"),
        start("a", "db2"),
        end("a", "db2", "failed"),
        start("a", "db2", 2),
        end("a", "db2", "ok", 2),
        start("b", "db1"),
        end("b", "db1", "ok"),
        start("b", "db1", 2),
        start("c", "db1"),
        start("d", "db1"),
        end("d", "db1", "timed-out"),
        end("e", "db1", "skipped"),
        start("f", "db1"),
        end("f", "db1", "exploded"),
        {"type": "interrupted", "signal": "SIGINT"},
        {"type": "manual", "step": "g", "host": "operator", "ok": False},
        {"type": "confirmation", "step": None, "question": "go?", "answer": "yes"},
    ]
    assert {key: host.status for key, host in fold(records).hosts.items()} == {
        ("a", "db1"): "ok",
        ("a", "db2"): "ok",
        ("b", "db1"): "unknown",
        ("c", "db1"): "unknown",
        ("d", "db1"): "timed_out",
        ("e", "db1"): "skipped",
        ("f", "db1"): "unknown",
        ("g", "operator"): "failed",
    }


def test_journal_lines_are_plain_json(journal: Journal) -> None:
    journal.append({"type": "run-end", "status": "ok", "exit_code": 0})
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["run", "run-end"]


def test_appends_at_once_share_fsyncs_and_each_returns_once_its_line_is_on_disk(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit, made deterministic: the first fsync is held until every other host has written its line,
    so that one fsync covers them all; each append returns only once a finished fsync covers its line, and
    the 8 appends cost at most 2 fsyncs (the first one's, and one for what was written while it ran) —
    whatever the scheduler does. A journal that fsyncs per append cannot pass: its first fsync would wait for
    lines that are never written while it holds the others back, or it would count 8."""
    hosts = 8
    synced: list[int] = []  # the journal's size when each finished fsync began: what it covers
    real = os.fsync
    all_written = len(journal.path.read_bytes().splitlines()) + hosts

    def held_fsync(fd: int) -> None:
        if not synced:  # the first one: wait (bounded) until every host's line is in the file
            deadline = time.monotonic() + 60
            while len(journal.path.read_bytes().splitlines()) < all_written:
                assert time.monotonic() < deadline, "the other hosts could not write while an fsync ran"
                time.sleep(0.001)
        size = os.fstat(fd).st_size
        real(fd)
        synced.append(size)

    monkeypatch.setattr(os, "fsync", held_fsync)

    def host(i: int) -> bool:
        journal.append({"type": "step-start", "step": "deploy", "host": f"node-{i}", "attempt": 1})
        covered = max(synced, default=0)
        text = journal.path.read_bytes()
        end = text.index(b"\n", text.index(f'"node-{i}"'.encode())) + 1
        return covered >= end

    with ThreadPoolExecutor(max_workers=hosts) as pool:
        on_disk = list(pool.map(host, range(hosts)))
    assert all(on_disk)
    assert synced[0] == journal.path.stat().st_size  # the held fsync covered every line
    assert 1 <= len(synced) <= 2
    assert len(read_journal(journal.path)) == 1 + hosts
