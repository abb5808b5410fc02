"""The run timeline, in process: bars from the journal, in start order, marks in words, an SVG with no script."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_checklist import NODES, ran

from engine.checklist import timeline
from engine.history import fold as read_run
from engine.outcomes import Status

HEADER = {"type": "run", "run_id": "r1", "runbook": {"name": "demo"}, "time": "2026-11-26T12:00:00.000Z"}


def journal(*records: dict[str, Any], end: str | None = "12:06:30") -> list[dict[str, Any]]:
    closing = [{"type": "run-end", "status": "failed", "exit_code": 1, "time": f"2026-11-26T{end}.000Z"}]
    return [HEADER, *records, *(closing if end else [])]


RECORDS = journal(
    *ran("restore", "local", "12:00:05", 42.5),
    *ran("rke-up", "local", "12:01:00", 185.2),
    *[r for i, node in enumerate(NODES) for r in ran("restart", node, f"12:04:1{i}", 3.25 + i)],
    *ran("restart", "10.0.0.9", "12:04:20", 2.0, status="failed", exit_code=1),
    {"type": "step-start", "step": "wait", "host": "local", "attempt": 1, "time": "2026-11-26T12:05:02.000Z"},
)


def test_each_step_and_host_is_a_bar_where_the_journal_puts_it() -> None:
    bars, length = timeline.bars(read_run(RECORDS))
    assert length == 390.0  # the run's end
    assert [(b.step, b.host) for b in bars] == [
        ("restore", "local"),
        ("rke-up", "local"),
        *(("restart", node) for node in NODES),
        ("restart", "10.0.0.9"),
        ("wait", "local"),
    ]
    assert (bars[0].start, bars[0].label) == (5.0, "42.5 s")
    assert (bars[1].start, bars[1].label) == (60.0, "3 min 05 s")
    assert (bars[5].status, bars[5].label) == (Status.FAILED, "✗ FAILED 2.0 s")
    unknown = bars[6]
    assert (unknown.start, unknown.end, unknown.ended, unknown.label) == (
        302.0,
        390.0,
        False,
        "? no end recorded",
    )


def test_without_a_run_end_an_open_bar_reaches_the_last_record() -> None:
    records = journal(
        *ran("a", "local", "12:00:00", 10.0),
        {
            "type": "step-start",
            "step": "b",
            "host": "local",
            "attempt": 1,
            "time": "2026-11-26T12:00:20.000Z",
        },
        end=None,
    )
    bars, length = timeline.bars(read_run(records))
    assert length == 20.0 and bars[-1].end == 20.0 and not bars[-1].ended


def test_the_svg_draws_every_bar_with_its_mark_and_no_script() -> None:
    drawn = str(timeline.svg(read_run(RECORDS)))
    assert drawn.startswith("<svg") and drawn.endswith("</svg>")
    assert "<script" not in drawn and "href" not in drawn and "url(" not in drawn
    assert len(re.findall(r'<g class="bar ', drawn)) == 7
    assert re.findall(r'<g class="bar (\w+)">', drawn) == ["ok"] * 5 + ["failed", "unknown"]
    assert re.findall(r'class="tick"[^>]*>([^<]+)<', drawn) == [
        "0 s",
        "1 min",
        "2 min",
        "3 min",
        "4 min",
        "5 min",
        "6 min",
    ]
    assert "restart · 10.0.0.9" in drawn


def test_an_empty_journal_draws_nothing() -> None:
    assert timeline.svg(read_run([HEADER])) == ""


@pytest.mark.parametrize(
    ("length", "step"), [(5, 1), (30, 5), (390, 60), (1000, 300), (7200, 900), (400000, 86400)]
)
def test_ticks_are_round_and_at_most_eight(length: float, step: int) -> None:
    assert timeline.tick_step(length) == step


def test_tick_labels() -> None:
    assert [timeline.tick_label(s) for s in (0, 45, 60, 90, 3600, 5400)] == [
        "0 s",
        "45 s",
        "1 min",
        "1 min 30 s",
        "1 h",
        "1 h 30 min",
    ]


def test_a_resumed_step_keeps_the_bar_of_its_earlier_failure() -> None:
    """Issue 23 bug 6: after a resume, the failed series of the first session stays on the timeline."""
    records = journal(
        *ran("restore", "local", "12:00:05", 2.0),
        *ran("restart", "local", "12:00:10", 3.0, status="failed", exit_code=1),
        {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-11-26T12:00:20.000Z"},
        {"type": "resumed", "user": "ann", "by": "operator", "time": "2026-11-26T12:05:00.000Z"},
        *ran("restart", "local", "12:05:05", 4.0),
    )
    bars, _ = timeline.bars(read_run(records))
    assert [(b.step, b.status, b.start) for b in bars] == [
        ("restore", Status.OK, 5.0),
        ("restart", Status.FAILED, 10.0),
        ("restart", Status.OK, 305.0),
    ]
