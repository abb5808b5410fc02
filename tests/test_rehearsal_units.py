"""The rehearsal's pure parts in process: the simulated clock's lanes, fault flags, scenario rules."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import yaml

from engine.errors import UsageError
from engine.rehearsal.clock import SimulatedClock
from engine.rehearsal.faults import Fault, Kind, parse
from engine.rehearsal.scenario import Answer, Rule

ROOT = Path(__file__).resolve().parent.parent


def test_each_host_has_its_own_time_and_a_step_starts_when_the_last_host_ended() -> None:
    clock, stop = SimulatedClock(), threading.Event()
    a, b = clock.timer("one", "a"), clock.timer("one", "b")
    clock.spend("a", 30.0)
    b.sleep(5.0, stop)
    clock.spend("b", 10.0)
    assert (a.now(), b.now()) == (30.0, 15.0)  # b's deadline counts b's time only
    assert clock.step_of("a") == "one"
    later = clock.timer("two", "b")
    assert later.now() == 30.0  # the next step starts after the slowest host of the one before
    stop.set()
    later.sleep(100.0, stop)  # a stopped run waits no more
    assert later.now() == 30.0 and clock.elapsed == 30.0
    clock.restart()
    assert clock.step_of("b") is None and clock.now("b") == 30.0  # a resume: its checks first, time goes on


def test_fault_flags_are_parsed_and_refused_as_written() -> None:
    assert parse(["restart@node-b=3", "flaky"], ["bucket@a"], "save") == (
        Fault(Kind.FAIL, "restart", "node-b", 3),
        Fault(Kind.FAIL, "flaky", None, 1),
        Fault(Kind.LOSE, "bucket", "a", 1),
        Fault(Kind.KILL, "save"),
    )
    assert str(Fault(Kind.FAIL, "restart", "node-b", 3)) == "--fail restart@node-b=3"
    assert Fault(Kind.FAIL, "rotate").hits("rotate[2]", "local")
    assert Fault(Kind.FAIL, "snapshot").hits("snapshot/save", "local")
    assert not Fault(Kind.FAIL, "rotate", "a").hits("rotate[2]", "b")
    for fail, lose, kill in ((["x=0"], [], None), ([], ["x"], None), ([], [], "x=2"), (["a b"], [], None)):
        with pytest.raises(UsageError):
            parse(fail, lose, kill)


def test_a_rule_matches_by_step_command_and_host_and_a_sequence_repeats_its_last_answer() -> None:
    rule = Rule(0, 3, (Answer(1), Answer(0)), "wait", re.compile("kubectl"), ("b",))
    assert rule.matches("wait", "b", "kubectl get node")
    assert not rule.matches("wait", "a", "kubectl get node")
    assert not rule.matches("other", "b", "kubectl get node")
    assert not rule.matches(None, "b", "kubectl get node")  # a check is no step's
    assert [rule.answer(n).exit for n in range(4)] == [1, 0, 0, 0]


def test_the_pre_commit_hook_leaves_scenarios_out() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    chosen = [
        path
        for path in ("runbooks/ha-rollback.yml", "runbooks/ha-rollback.rehearsal.yml", "x/a.runbook.yml")
        if re.search(hook["files"], path) and not re.search(hook["exclude"], path)
    ]
    assert chosen == ["runbooks/ha-rollback.yml", "x/a.runbook.yml"]
