"""engine/running.py in process: the runner driven with a fake executor and a captured terminal.

The fake executor is a real `Executor` (the template in engine/executors/base.py runs it) over scripted
primitives: each command gets a scripted reply, or hangs until it is killed. So retries, timeouts, expect,
confirmations, manual answers, max_failed_hosts and interrupts are decided here in milliseconds; the
end-to-end tests (test_run_local.py, test_run_ssh.py) prove the same with real processes and sshd.
"""

from __future__ import annotations

import io
import itertools
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine import records, targets, variables
from engine.asking import Settings
from engine.console import Terminal
from engine.errors import Declined, Interrupted, JournalError, StepFailed
from engine.executors.base import Executor, Invocation, Process
from engine.executors.jobs import Job
from engine.executors.local import LocalExecutor
from engine.history import fold
from engine.journal import Journal, read_journal
from engine.masking import Masker
from engine.outcomes import HostOutcome, Status, StepOutcome
from engine.planner import build_plan
from engine.planning import Plan
from engine.preflight import Fleet
from engine.resume import Previous
from engine.running import Runner
from engine.validation import validate
from runbooks import wait_for

# -- the fake executor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What a scripted command does: print, then exit with `code`; or hang until killed."""

    code: int = 0
    stdout: str = ""
    stderr: str = ""
    hang: bool = False
    interrupt: bool = False  # press Ctrl-C (in the main thread) once the command runs


class FakeProcess(Process):
    def __init__(self, reply: Reply, killed: threading.Event) -> None:
        self.reply, self.killed = reply, killed
        self.out = [reply.stdout.encode()] if reply.stdout else []
        self.err = [reply.stderr.encode()] if reply.stderr else []

    def read_stdout(self, size: int) -> bytes:
        if self.out:
            return self.out.pop()
        if self.reply.hang:
            self.killed.wait(10)  # bounded: a test that forgets to kill still ends
        return b""

    def read_stderr(self, size: int) -> bytes:
        return self.err.pop() if self.err else b""

    def wait(self) -> object:
        return None

    def returncode(self) -> int | None:
        return 128 + 15 if self.killed.is_set() else self.reply.code


@dataclass
class FakeExecutor(Executor):
    """`replies(script, attempt)` says what each command does; every invocation is kept, in order."""

    name: str
    replies: Callable[[str, int], Reply]
    calls: list[Invocation] = field(default_factory=list)
    killed: dict[int, threading.Event] = field(default_factory=dict)
    closes: list[str] = field(default_factory=list)  # the thread of each close
    warms: list[str] = field(default_factory=list)  # the thread of each warm

    def __post_init__(self) -> None:
        super().__init__(self.name)
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()

    def start(self, job: Job, invocation: Invocation) -> Process:
        with self._lock:
            self.calls.append(invocation)
            attempt = sum(1 for c in self.calls if c.script == invocation.script)
            pgid = next(self._ids)
            self.killed[pgid] = threading.Event()
        job.set_pgid(pgid)  # journaled (and, the first time, the run's warming begun) before the reply
        reply = self.replies(invocation.script, attempt)
        if reply.interrupt:  # what Ctrl-C does: SIGINT to the main thread, waiting for the fan-out
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        return FakeProcess(reply, self.killed[pgid])

    def signal_groups(self, pgids: list[int], name: str) -> None:
        for pgid in pgids:
            self.killed[pgid].set()

    def platform(self) -> str:
        return "linux"

    def group_alive(self, pgid: int, started: str | None) -> bool:
        return False  # the fake's commands end with their `run()` call

    def scripts(self) -> list[str]:
        return [c.script.strip() for c in self.calls]

    def close(self) -> None:
        self.closes.append(threading.current_thread().name)

    def warm(self) -> None:
        self.warms.append(threading.current_thread().name)


def ok(script: str, attempt: int) -> Reply:
    return Reply(stdout=f"ran {script.strip()}\n")


# -- a runner around a runbook -------------------------------------------------------------------------

AFTER = "  - id: after\n    title: After\n    run: after\n"
HEAD = 'runbook: 1\nname: fake\nversion: "1.0"\ntitle: In-process runner\n'
NODES = "targets:\n  nodes:\n    ssh:\n      hosts: [a, b, c]\n    concurrency: 3\n"


@dataclass
class Lab:
    plan: Plan
    runner: Runner
    executors: dict[str, FakeExecutor]
    out: io.StringIO
    journal: Journal

    def run(self) -> list[StepOutcome]:
        return self.runner.run(self.plan.steps)

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in read_journal(self.journal.path) if r["type"] == kind]

    @property
    def text(self) -> str:
        return self.out.getvalue()


def resumed_from(statuses: dict[tuple[str, str], Status]) -> Previous:
    """A run being resumed whose journal left each (step, host) in the given state."""
    journaled: list[dict[str, Any]] = [{"type": "run", "run_id": "r0", "runbook": {"name": "fake"}}]
    for (step, host), status in statuses.items():
        journaled.append(records.step_start(step, host, 1))
        if status is not Status.UNKNOWN:
            journaled.append(records.step_end(HostOutcome(step, host, status)))
    history = fold(journaled)
    return Previous("r0", history, None, history.hosts)


@pytest.fixture
def lab_for(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    journals: list[Journal] = []

    def make(
        steps: str,
        extra: str = "",
        answers: str = "",
        replies: Callable[[str, int], Reply] = ok,
        settings: Settings | None = None,
        previous: dict[tuple[str, str], Status] | None = None,
    ) -> Lab:
        path = tmp_path / "book.yml"
        path.write_text(HEAD + extra + "steps:\n" + steps)
        runbook = validate(path, "book.yml").runbook
        values = variables.resolve(runbook, {}, environ={})
        resolved = targets.resolve(runbook, {**values.values, "platform": "linux"})
        plan = build_plan(runbook, values, "linux", resolved)
        names = {h.name for t in resolved.values() for h in t.hosts}
        executors = {name: FakeExecutor(name, replies) for name in names}
        fleet = Fleet(dict(executors), dict.fromkeys(names, "linux"), local={"local"})
        out = io.StringIO()
        terminal = Terminal(Masker(plan.values.secret_values()), out=out, answers=io.StringIO(answers))
        run_id = f"r{len(journals)}"
        journal = Journal.create(tmp_path / "state", {"type": "run", "runbook": {"name": "fake"}}, run_id)
        journals.append(journal)
        resumed = resumed_from(previous) if previous is not None else None
        runner = Runner(plan, fleet, terminal, journal, settings or Settings(), "ann", resumed)
        return Lab(plan, runner, executors, out, journal)

    yield make
    for journal in journals:
        journal.close()


# -- retries, timeouts, expect ----------------------------------------------------------------------


def fails_first(script: str, attempt: int) -> Reply:
    return Reply(code=1 if attempt == 1 else 0)


@pytest.mark.parametrize(
    ("retries", "status", "attempts"), [("{count: 2, delay: 10ms}", Status.OK, 2), ("0", Status.FAILED, 1)]
)
def test_retries_run_a_failing_command_again(
    lab_for: Callable[..., Lab], retries: str, status: Status, attempts: int
) -> None:
    lab = lab_for(
        f"  - id: flaky\n    title: Flaky\n    retries: {retries}\n    run: flaky\n", replies=fails_first
    )
    [outcome] = lab.run()
    assert outcome.hosts[0].status is status and outcome.hosts[0].attempts == attempts
    assert lab.executors["local"].scripts() == ["flaky"] * attempts
    assert [r["attempt"] for r in lab.records("step-end")] == list(range(1, attempts + 1))
    assert ("local: attempt 1 failed; retrying" in lab.text) is (status is Status.OK)


def test_a_timeout_kills_the_command_and_times_the_step_out(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for(
        "  - id: hang\n    title: Hang\n    timeout: 0.2s\n    run: hang\n",
        replies=lambda s, a: Reply(hang=True),
    )
    [outcome] = lab.run()
    host = outcome.hosts[0]
    assert host.status is Status.TIMED_OUT and host.exit_code is None and host.reason == "killed after 0.2s"
    assert all(event.is_set() for event in lab.executors["local"].killed.values())
    assert outcome.stopped and lab.records("step-end")[0]["status"] == "timed_out"


@pytest.mark.parametrize(
    ("expect", "stdout", "reason"),
    [
        ("{stdout_contains: healthy}", "degraded\n", "output does not contain 'healthy'"),
        ("{stdout_matches: '^v2\\.'}", "v1.9\n", "output does not match " + repr("^v2\\.")),
        ("{exit_code: [0, 3]}", "", None),
    ],
)
def test_expect_decides_success(
    lab_for: Callable[..., Lab], expect: str, stdout: str, reason: str | None
) -> None:
    steps = f"  - id: health\n    title: Health\n    expect: {expect}\n    run: check\n" + AFTER
    code = 3 if reason is None else 0
    lab = lab_for(steps, replies=lambda s, a: Reply(code=code if s.strip() == "check" else 0, stdout=stdout))
    outcomes = lab.run()
    if reason is None:  # exit 3 is expected: the run goes on
        assert [o.status for o in outcomes] == [Status.OK, Status.OK]
        return
    assert [o.status for o in outcomes] == [Status.FAILED] and outcomes[0].hosts[0].reason == reason
    assert lab.executors["local"].scripts() == ["check"]


def test_continue_on_error_goes_on_and_the_failure_stays(lab_for: Callable[..., Lab]) -> None:
    steps = "  - id: optional\n    title: Optional\n    continue_on_error: true\n    run: fail\n" + AFTER
    lab = lab_for(steps, replies=lambda s, a: Reply(code=4 if s.strip() == "fail" else 0))
    outcomes = lab.run()
    assert [o.status for o in outcomes] == [Status.FAILED, Status.OK]
    assert "continue_on_error: going on" in lab.text


# -- fan-out and max_failed_hosts -----------------------------------------------------------------------


@pytest.mark.parametrize(("tolerated", "goes_on"), [(0, False), (1, True)])
def test_max_failed_hosts(lab_for: Callable[..., Lab], tolerated: int, goes_on: bool) -> None:
    steps = (
        f"  - id: one\n    title: One\n    on: nodes\n    max_failed_hosts: {tolerated}\n    run: one\n"
        "  - id: two\n    title: Two\n    on: nodes\n    run: two\n"
    )
    lab = lab_for(steps, NODES)
    lab.executors["b"].replies = lambda s, a: Reply(code=1 if s.startswith("one") else 0)
    outcomes = lab.run()
    assert outcomes[0].failed_hosts == ("b",) and outcomes[0].stopped is not goes_on
    if goes_on:  # the failed host is left out of later steps; the others go on
        assert "within max_failed_hosts=1: going on without b" in lab.text
        assert sorted((h.host, h.status) for h in outcomes[1].hosts) == [
            ("a", Status.OK),
            ("b", Status.SKIPPED),
            ("c", Status.OK),
        ]
        assert lab.executors["b"].scripts() == ["one"] and lab.executors["a"].scripts() == ["one", "two"]
    else:
        assert len(outcomes) == 1 and lab.executors["a"].scripts() == ["one"]


# -- confirmations and manual answers ----------------------------------------------------------------------

TYPED = (
    '  - id: drop\n    title: Drop\n    confirm: {question: This deletes every row., type: "{{ cluster }}"}\n'
    "    run: drop\n"
)
TYPED_VARS = "variables:\n  cluster: {type: string, default: staging-eu}\n"


@pytest.mark.parametrize(
    ("answers", "ran"),
    [
        ("staging-eu\n", True),
        ("staging-us\nstaging-eu\n", True),  # a typo is asked again
        ("staging-us\n", False),  # then end of input: declined
        ("y\n\n", False),  # Enter declines
        ("a\nb\nc\nstaging-eu\n", False),  # three wrong answers decline
        ("", False),
    ],
)
def test_typed_confirmation(lab_for: Callable[..., Lab], answers: str, ran: bool) -> None:
    lab = lab_for(TYPED, TYPED_VARS, answers)
    if ran:
        lab.run()
    else:
        with pytest.raises(Declined, match="step 'drop' was declined"):
            lab.run()
    assert lab.executors["local"].scripts() == (["drop"] if ran else [])
    assert "Type 'staging-eu' to go on (Enter to decline):" in lab.text
    [confirmation] = lab.records("confirmation")
    assert confirmation["by"] == "operator" and confirmation["ok"] is ran


@pytest.mark.parametrize(("answers", "ran"), [("y\n", True), ("n\n", False), ("", False)])
def test_yes_no_confirmation(lab_for: Callable[..., Lab], answers: str, ran: bool) -> None:
    lab = lab_for(
        "  - id: restart\n    title: Restart\n    confirm: Restart now?\n    run: restart\n", answers=answers
    )
    if ran:
        lab.run()
    else:
        with pytest.raises(Declined):
            lab.run()
    assert "Restart now? [y/N]" in lab.text and lab.executors["local"].scripts() == (
        ["restart"] if ran else []
    )


MANUAL = TYPED + (
    "  - id: check\n    title: Read the version\n    manual: Read the version.\n"
    "    record: {prompt: Version shown, expect: v2.0.8}\n  - id: after\n    title: After\n    run: after\n"
)


@pytest.mark.parametrize(("answers", "ok"), [("v2.0.8\n", True), ("v2.0.7\n", False), ("", False)])
def test_yes_answers_confirmations_but_never_manual_steps(
    lab_for: Callable[..., Lab], answers: str, ok: bool
) -> None:
    lab = lab_for(MANUAL, TYPED_VARS, answers, settings=Settings(yes=True))
    outcomes = lab.run()
    assert "— yes (--yes)" in lab.text and "Version shown:" in lab.text
    [manual] = lab.records("manual")
    assert manual["by"] == "operator" and manual["answer"] == (answers.strip() or None) and manual["ok"] is ok
    assert lab.executors["local"].scripts() == (["drop", "after"] if ok else ["drop"])
    assert outcomes[1].status is (Status.OK if ok else Status.FAILED)
    if answers == "":
        assert "(no answer: end of input)" in lab.text
    elif not ok:
        assert "expected 'v2.0.8', got 'v2.0.7'" in lab.text


def test_confirm_manual_answers_and_says_so(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for(MANUAL, TYPED_VARS, settings=Settings(yes=True, confirm_manual=True))
    lab.run()
    assert "answered by --confirm-manual: v2.0.8" in lab.text
    [manual] = lab.records("manual")
    assert manual["by"] == "--confirm-manual" and manual["answer"] == "v2.0.8"
    assert lab.executors["local"].scripts() == ["drop", "after"]


def test_confirm_manual_cannot_answer_a_pattern(lab_for: Callable[..., Lab]) -> None:
    steps = "  - id: check\n    title: Check\n    manual: Look.\n"
    steps += "    record: {prompt: Seen, expect: {matches: 'v[0-9]+'}}\n"
    lab = lab_for(steps, settings=Settings(confirm_manual=True))
    [outcome] = lab.run()
    assert outcome.status is Status.FAILED and "cannot answer a 'matches' record" in outcome.hosts[0].reason


def test_when_false_skips_the_step_and_journals_why(lab_for: Callable[..., Lab]) -> None:
    steps = "  - id: prod-only\n    title: Prod\n    when: stage == 'prod'\n    run: prod\n" + AFTER
    lab = lab_for(steps, "variables:\n  stage: {type: string, default: staging}\n")
    outcomes = lab.run()
    assert [o.status for o in outcomes] == [Status.SKIPPED, Status.OK]
    assert lab.executors["local"].scripts() == ["after"]
    assert "when: stage == 'prod' is false" in lab.records("step-end")[0]["reason"]


# -- resume: what finished is not run again; unknown outcomes are asked about ----------------------------

ABC = "".join(f"  - id: {s}\n    title: Step {s}\n    run: {s}\n" for s in "abc")


def test_resume_skips_what_finished_and_asks_about_unknown(lab_for: Callable[..., Lab]) -> None:
    previous = {("a", "local"): Status.OK, ("b", "local"): Status.UNKNOWN}
    lab = lab_for(ABC, answers="y\n", previous=previous)
    outcomes = lab.run()
    assert [o.hosts[0].status for o in outcomes] == [Status.DONE_BEFORE, Status.OK, Status.OK]
    assert lab.executors["local"].scripts() == ["b", "c"]
    [asked] = lab.records("confirmation")
    assert asked["host"] == "local" and asked["answer"] == "yes" and asked["by"] == "operator"


def test_resume_stops_at_an_unknown_outcome_not_confirmed(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for(ABC, answers="n\n", previous={("a", "local"): Status.UNKNOWN})
    with pytest.raises(StepFailed, match="outcome unknown and not confirmed"):
        lab.run()
    assert lab.executors["local"].scripts() == []


def test_rerun_unknown_answers_for_the_operator(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for(ABC, previous={("a", "local"): Status.UNKNOWN}, settings=Settings(rerun_unknown=True))
    lab.run()
    assert "Run it again? yes (--rerun-unknown)" in lab.text
    assert lab.records("confirmation")[0]["by"] == "--rerun-unknown"


# -- interrupts ----------------------------------------------------------------------------------------------


def test_ctrl_c_kills_every_running_command_and_leaves_through_interrupted(
    lab_for: Callable[..., Lab],
) -> None:
    steps = "  - id: long\n    title: Long\n    on: nodes\n    run: long\n" + AFTER
    lab = lab_for(steps, NODES, replies=lambda s, a: Reply(hang=True))

    def last_to_start(script: str, attempt: int) -> Reply:  # Ctrl-C once every host's command runs
        others = threading.Event()
        for _ in range(500):
            if lab.executors["a"].calls and lab.executors["b"].calls:
                others.set()
                break
            others.wait(0.01)
        assert others.is_set(), "a and b never started"
        return Reply(hang=True, interrupt=True)

    lab.executors["c"].replies = last_to_start
    with pytest.raises(Interrupted):
        lab.run()
    for name in "abc":
        assert [event.is_set() for event in lab.executors[name].killed.values()] == [True], name
    ends = lab.records("step-end")
    assert sorted(r["host"] for r in ends) == ["a", "b", "c"] and {r["status"] for r in ends} == {
        "interrupted"
    }
    assert lab.executors["local"].calls == []


# -- hosts released once no later step needs them ------------------------------------------------------------

SPREAD = (
    "variables:\n  stage: {type: string, default: staging}\n"
    "targets:\n  nodes: {ssh: {hosts: [a, b]}}\n  bee: {ssh: {hosts: [b]}}\n  sea: {ssh: {hosts: [c]}}\n"
)
SPREAD_STEPS = (
    "  - id: both\n    title: On a and b\n    on: nodes\n    run: both\n"
    "  - id: between\n    title: Here\n    run: between\n"
    "  - id: on-b\n    title: On b\n    on: bee\n    run: on-b\n"
    "  - id: maybe-c\n    title: On c in prod\n    on: sea\n    when: stage == 'prod'\n    run: maybe-c\n"
    "  - id: last\n    title: Here again\n    run: last\n"
)


def test_a_host_no_later_step_lists_is_closed_in_the_background_while_the_run_goes_on(
    lab_for: Callable[..., Lab],
) -> None:
    """After each step, the hosts no later step lists are released: `a` is closed while `between` runs
    (which waits for that), `b` only once `on-b` ran, `c` (its step skipped by a `when`, known to be only
    when it comes) only after that step; this machine is never released, and the last step releases
    nothing: the run's end closes what is left."""
    lab = lab_for(SPREAD_STEPS, SPREAD)
    executors = lab.executors

    def closed(*names: str) -> Reply:
        wait_for(lambda: all(executors[n].closes for n in names), f"{names} to be closed", timeout=10)
        return Reply(stdout=" ".join(n for n in "abc" if executors[n].closes))

    replies = {
        "between": lambda: closed("a"),
        "on-b": lambda: Reply(stdout=" ".join(n for n in "abc" if executors[n].closes)),
        "last": lambda: closed("a", "b", "c"),
    }
    executors["local"].replies = executors["b"].replies = lambda script, _: replies.get(script, Reply)()
    outcomes = lab.run()
    assert [o.status for o in outcomes] == [Status.OK] * 3 + [Status.SKIPPED, Status.OK]
    said = {o.step: o.hosts[0].stdout for o in outcomes if o.step in replies}
    assert said == {"between": "a", "on-b": "a", "last": "a b c"}
    assert {n: e.closes for n, e in executors.items()} == {
        "a": ["releasing"],
        "b": ["releasing"],
        "c": ["releasing"],
        "local": [],
    }
    lab.runner.fleet.close()  # the run's end: what is left (this machine), and nothing twice
    assert {n: len(e.closes) for n, e in executors.items()} == {"a": 1, "b": 1, "c": 1, "local": 1}


def test_a_rolling_groups_batch_is_released_once_its_last_step_on_it_ran(lab_for: Callable[..., Lab]) -> None:
    """Host by host (`serial: 1`): `a` is closed once its batch's last step on it ran (while the rest runs),
    `b` once its own did; neither before (the first drain sees nothing closed)."""
    steps = (
        "  - id: upgrade\n    title: Upgrade\n    on: nodes\n    serial: 1\n    steps:\n"
        "      - {id: drain, title: Drain, run: drain}\n"
        "      - {id: note, title: Note, on: local, run: note}\n"
    )
    lab = lab_for(steps, SPREAD)
    executors = lab.executors

    def closed_now(script: str, attempt: int) -> Reply:
        if script == "note" and executors["b"].calls:
            wait_for(lambda: executors["b"].closes, "b to be closed", timeout=10)
        elif script == "note" or executors["b"].calls:
            wait_for(lambda: executors["a"].closes, "a to be closed", timeout=10)
        return Reply(stdout=" ".join(n for n in "ab" if executors[n].closes))

    for name in ("a", "b", "local"):
        executors[name].replies = closed_now
    outcomes = lab.run()
    said = [(o.step, o.hosts[0].stdout) for o in outcomes]
    assert said == [
        ("upgrade[a]/drain", ""),
        ("upgrade[a]/note", "a"),
        ("upgrade[b]/drain", "a"),
        ("upgrade[b]/note", "a b"),
    ]


def test_a_step_that_stops_the_run_releases_nothing(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for("  - id: both\n    title: On a and b\n    on: nodes\n    run: both\n" + AFTER, SPREAD)
    lab.executors["a"].replies = lambda script, attempt: Reply(code=1)
    [outcome] = lab.run()
    assert outcome.stopped and all(e.closes == [] for e in lab.executors.values())


def test_an_error_under_a_step_still_ends_it_in_the_journal_and_goes_on_up(
    lab_for: Callable[..., Lab],
) -> None:
    """Whatever breaks an attempt off (here the executor itself), its `step-start` gets its end: the
    outcome is unknown, as after a crash (a resume asks before running it again), and the error goes on."""

    def broken(script: str, attempt: int) -> Reply:
        raise RuntimeError("the executor broke")

    lab = lab_for("  - id: one\n    title: One\n    run: one\n" + AFTER, replies=broken)
    with pytest.raises(RuntimeError, match="the executor broke"):
        lab.run()
    [start], [end] = lab.records("step-start"), lab.records("step-end")
    assert (start["step"], end["step"], end["host"], end["status"]) == ("one", "one", "local", "unknown")
    assert end["reason"] == "broken off by an error: the executor broke"
    assert [(o.step, o.status) for o in lab.runner.finished] == [("one", Status.UNKNOWN)]
    assert lab.executors["local"].scripts() == ["one"]  # and nothing after it


def test_a_group_the_journal_refuses_never_starts_its_script(
    lab_for: Callable[..., Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The go comes once the group is in the journal: a journal that refuses the `process-group` record (a
    lost lock does so) leaves the script unstarted (a real local command that would touch a marker), the
    step failed and not started, and the journal's error goes on up."""
    marker = tmp_path / "ran"
    lab = lab_for(f"  - id: one\n    title: One\n    run: touch {marker}\n" + AFTER)
    lab.runner.fleet.executors["local"] = LocalExecutor()
    written = lab.journal.append
    ended: list[dict[str, Any]] = []

    def refusing(record: Mapping[str, Any]) -> None:
        if record["type"] == "process-group":
            raise JournalError("the lock was taken over")
        if record["type"] == "step-end":
            ended.append(dict(record))
        written(record)

    monkeypatch.setattr(lab.journal, "append", refusing)
    with pytest.raises(JournalError, match="the lock was taken over"):
        lab.run()
    assert not marker.exists()
    [end] = ended
    assert (end["step"], end["status"]) == ("one", "failed")
    assert end["reason"] == "not started: the journal refused its process group: the lock was taken over"
    assert [(o.step, o.status) for o in lab.runner.finished] == [("one", Status.FAILED)]


class CtrlC(io.StringIO):
    """Standard input where the operator presses Ctrl-C at the first question."""

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_a_manual_step_ends_it_in_the_journal(lab_for: Callable[..., Lab]) -> None:
    lab = lab_for("  - id: check\n    title: Check\n    manual: Look at it.\n" + AFTER)
    lab.runner.terminal.answers = CtrlC()
    with pytest.raises(KeyboardInterrupt):
        lab.run()
    [start], [end] = lab.records("step-start"), lab.records("step-end")
    assert (start["host"], end["host"], end["status"], end["reason"]) == (
        "operator",
        "operator",
        "interrupted",
        "interrupted",
    )
    assert lab.records("manual") == [] and lab.executors["local"].calls == []


# -- authoring: run_once, until, loop (issue 13) -------------------------------------------------------------

ONCE = "  - id: once\n    title: Once\n    on: nodes\n    run_once: true\n    run: create-bucket\n"


def test_run_once_runs_on_the_first_host_not_left_out_and_a_resume_keeps_its_host(
    lab_for: Callable[..., Lab],
) -> None:
    lab = lab_for(ONCE.replace("    run:", "    when: host.name != 'a'\n    run:"), NODES)
    [outcome] = lab.run()
    assert [h.host for h in outcome.hosts] == ["b"] and outcome.hosts[0].status is Status.OK
    assert [lab.executors[n].scripts() for n in "abc"] == [[], ["create-bucket"], []]
    resumed = lab_for(ONCE, NODES, previous={("once", "c"): Status.UNKNOWN}, answers="y\n")
    resumed.run()
    assert [resumed.executors[n].scripts() for n in "abc"] == [[], [], ["create-bucket"]]


def test_until_tries_again_until_the_output_says_so(lab_for: Callable[..., Lab]) -> None:
    def starting_twice(script: str, attempt: int) -> Reply:
        return Reply(stdout='{"up": %s}\n' % ("true" if attempt == 3 else "false"))

    step = "  - id: w\n    title: W\n    run: probe\n    until: (result.stdout | from_json).up\n"
    lab = lab_for(step + "    retries: {count: 5, delay: 10ms}\n", replies=starting_twice)
    [outcome] = lab.run()
    assert outcome.hosts[0].status is Status.OK and outcome.hosts[0].attempts == 3
    assert lab.text.count("until (result.stdout | from_json).up is false") == 2


def test_each_loop_item_is_a_unit_with_its_own_outcome(lab_for: Callable[..., Lab]) -> None:
    def fails_b(script: str, attempt: int) -> Reply:
        return Reply(code=1 if script.strip() == "rotate b" else 0)

    step = "  - id: r\n    title: R\n    loop: [a, b, c]\n    run: rotate {{ item }}\n"
    lab = lab_for(step, replies=fails_b, previous={("r[1]", "local"): Status.OK})
    outcomes = lab.run()
    assert [(o.step, o.status) for o in outcomes] == [("r[1]", Status.OK), ("r[2]", Status.FAILED)]
    assert outcomes[0].hosts[0].status is Status.DONE_BEFORE
    assert lab.executors["local"].scripts() == ["rotate b"]  # a done, c not reached


# -- hosts warmed while the run waits ------------------------------------------------------------------------

WARM_STEPS = (
    "  - id: here\n    title: Here\n    run: here\n"
    "  - id: both\n    title: On a and b\n    on: nodes\n    run: both\n"
    "  - id: between\n    title: Here\n    run: between\n"
    "  - id: on-b\n    title: On b\n    on: bee\n    run: on-b\n"
)


def warms_once(executors: dict[str, FakeExecutor], **counts: int) -> Reply:
    """A local step's reply once the hosts were warmed `counts` times: what each was, by then."""
    wait_for(
        lambda: all(len(executors[n].warms) >= c for n, c in counts.items()), f"warms {counts}", timeout=10
    )
    return Reply(stdout=" ".join(f"{n}{len(executors[n].warms)}" for n in "abc"))


def test_hosts_are_warmed_once_the_run_waits_and_only_for_a_later_step(lab_for: Callable[..., Lab]) -> None:
    """While the first step runs, the hosts the later steps list get their next command ready (`a`, `b`;
    not `c`, no step's, nor this machine); after `both`, `b` again (`on-b` lists it), not `a` (nothing
    later does). In the background, on one thread."""
    lab = lab_for(WARM_STEPS, SPREAD)
    executors = lab.executors
    replies = {
        "here": lambda: warms_once(executors, a=1, b=1),
        "between": lambda: warms_once(executors, b=2),
    }
    executors["local"].replies = lambda script, _: replies.get(script, Reply)()
    outcomes = lab.run()
    said = {o.step: o.hosts[0].stdout for o in outcomes if o.step in replies}
    assert said == {"here": "a1 b1 c0", "between": "a1 b2 c0"}
    assert {n: set(e.warms) for n, e in executors.items()} == {
        "a": {"warming"},
        "b": {"warming"},
        "c": set(),
        "local": set(),
    }


class AnswersOnceWarmed(io.StringIO):
    """Standard input where the operator answers "y" once `executor` was warmed: the warming is done while
    the question waits."""

    def __init__(self, executor: FakeExecutor) -> None:
        super().__init__("y\n")
        self.executor = executor

    def readline(self, size: int | None = -1) -> str:
        wait_for(lambda: self.executor.warms, f"{self.executor.host} to be warmed", timeout=10)
        return super().readline(size)


def test_a_manual_step_is_a_wait_the_hosts_are_warmed_in(lab_for: Callable[..., Lab]) -> None:
    """The run's first wait is the operator's answer to a manual step: the hosts of the later steps are
    got ready while the question waits (`b`; not `a`, no later step's)."""
    steps = (
        "  - id: ask\n    title: Ask\n    manual: Look\n"
        "  - id: on-b\n    title: On b\n    on: bee\n    run: on-b\n"
    )
    lab = lab_for(steps, SPREAD)
    lab.runner.terminal.answers = AnswersOnceWarmed(lab.executors["b"])
    outcomes = lab.run()
    assert [o.status for o in outcomes] == [Status.OK, Status.OK]
    assert lab.executors["b"].warms == ["warming"] and not lab.executors["a"].warms


def test_a_host_no_step_still_to_come_lists_is_not_warmed(lab_for: Callable[..., Lab]) -> None:
    """The first wait is `both`'s own command: `a`, whose one command that is, is not got ready again (a
    session nobody would take); `b`, which `on-b` lists, is."""
    lab = lab_for(WARM_STEPS[WARM_STEPS.index("  - id: both") :], SPREAD)  # both, between, on-b
    executors = lab.executors
    executors["local"].replies = lambda script, _: warms_once(executors, b=1)
    outcomes = lab.run()
    assert [o.status for o in outcomes] == [Status.OK] * 3
    assert executors["a"].warms == [] and executors["b"].warms


def test_the_hosts_of_a_step_not_started_yet_are_warmed_too(lab_for: Callable[..., Lab]) -> None:
    """One host at a time (`concurrency: 1`), and no later step: once `a`'s command started, `b` and `c`,
    whose commands come later in this very step, are got ready meanwhile; `a` is not (done by then)."""
    lab = lab_for(
        "  - id: one-by-one\n    title: One by one\n    on: nodes\n    concurrency: 1\n    run: x\n", NODES
    )
    executors = lab.executors

    def waits_for_warms(script: str, attempt: int) -> Reply:  # each command, once b and c were warmed
        wait_for(lambda: executors["b"].warms and executors["c"].warms, "b and c to be warmed", timeout=10)
        return Reply()

    for name in "abc":
        executors[name].replies = waits_for_warms
    [outcome] = lab.run()
    assert outcome.hosts and all(h.status is Status.OK for h in outcome.hosts)
    assert executors["a"].warms == [] and executors["b"].warms == executors["c"].warms == ["warming"]
