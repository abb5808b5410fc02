"""engine/records: every record a builder makes reads back as its type; older and odd journals read with
defaults instead of failing; a type this version does not know is skipped."""

from __future__ import annotations

from engine import records
from engine.outcomes import HostOutcome, RunStatus, Status
from engine.records import AnsweredBy, parse


def test_every_builder_reads_back_as_its_type() -> None:
    header = records.run(
        "r1",
        records.RunbookRef(name="deploy", version="1.2", sha256="ab", path="deploy.yml"),
        [records.Use("snap", "snap.yml", "cd")],
        {"token": "********"},
        {"rotate": ["a", {"b": 1}]},
        platform="linux",
        engine_version="0.1",
        user="ann",
        hostname="jump",
        pid=42,
        argv=["runbook", "run"],
    )
    read = parse(header)
    assert isinstance(read, records.RunHeader)
    assert (read.run_id, read.runbook.name, read.runbook.version, read.uses) == (
        "r1",
        "deploy",
        "1.2",
        (records.Use("snap", "snap.yml", "cd"),),
    )
    assert (read.loops, read.pid, read.argv) == ({"rotate": ("a", {"b": 1})}, 42, ("runbook", "run"))
    outcome = HostOutcome("a", "h", Status.FAILED, 3, 1.5, 2, "why", "out\n", "err\n")
    end = parse(records.step_end(outcome, last=False))
    assert isinstance(end, records.StepEnd) and (end.outcome, end.last) == (outcome, False)
    group = parse(records.process_group("a", "h", 2, 4242, "123"))
    assert isinstance(group, records.ProcessGroup) and (group.pgid, group.started, group.attempt) == (
        4242,
        "123",
        2,
    )
    asked = parse(records.confirmation("a", "go?", "no", "ann", AnsweredBy.YES, host="h"))
    assert isinstance(asked, records.Confirmation) and (asked.ok, asked.host, asked.by) == (
        False,
        "h",
        "--yes",
    )
    typed = parse(records.confirmation("a", "type it", "prod", "ann", AnsweredBy.OPERATOR, ok=True))
    assert isinstance(typed, records.Confirmation) and typed.ok
    answer = parse(records.manual("m", "Version", None, "1.2", False, "ann", AnsweredBy.OPERATOR))
    assert isinstance(answer, records.Manual) and (answer.answer, answer.expected, answer.host) == (
        None,
        "1.2",
        "operator",
    )
    again = parse(records.resumed("bob", 7, {"a": 1}, ["runbook"], {}))
    assert isinstance(again, records.Resumed) and (again.user, again.loops) == ("bob", {})
    assert parse(records.run_end(RunStatus.INTERRUPTED, 130)) == records.RunEnd(
        status="interrupted", exit_code=130
    )


def test_older_and_odd_records_read_with_defaults() -> None:
    old_end = {"type": "step-end", "step": "a", "host": "h", "status": "timed-out", "stdout_tail": "t"}
    end = parse(old_end)
    assert isinstance(end, records.StepEnd)
    assert (end.outcome.status, end.outcome.stdout, end.outcome.attempts, end.last) == (
        Status.TIMED_OUT,
        "t",
        1,
        True,
    )
    odd = parse({"type": "step-start", "step": "a", "host": "h", "attempt": "x"})
    assert odd == records.StepStart(step="a", host="h", attempt=1)
    skipped = parse({"type": "step-start", "step": "a", "host": "h", "attempt": 0})  # a skipped host's
    assert isinstance(skipped, records.StepStart) and skipped.attempt == 1
    header = parse({"type": "run", "runbook": "not a mapping", "pid": "12", "uses": {"x": 1}})
    assert isinstance(header, records.RunHeader)
    assert (header.runbook.name, header.pid, header.uses, header.loops) == ("", None, (), None)
    assert parse({"type": "process-group", "step": "a", "host": "h"}) is None  # no group id: nothing to check
    assert parse({"type": "approval", "step": "a"}) is None and parse({"step": "a"}) is None
    assert parse({"type": "run-end"}) == records.RunEnd(status="failed")


def test_output_is_kept_whole_up_to_the_bound_then_cut_at_whole_lines() -> None:
    short = "line\n" * 10
    assert records.bounded(short) == short
    long = "".join(f"line {i:06d}\n" for i in range(20_000))
    cut = records.bounded(long, kept=1000)
    head, note, tail = cut.partition(records.CUT_NOTE)
    assert note and long.startswith(head) and long.endswith(tail) and len(cut) <= 1000 + len(note)
    assert head.endswith("\n") and tail.startswith("line ")
