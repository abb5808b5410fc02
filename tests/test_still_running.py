"""No second copy: an unknown step whose first copy still runs is waited for, killed, or left — never run twice.

The engine is SIGKILLed (a real signal, no handler runs) while the step's `sleep` runs, locally and on a real
sshd node. Locally the engine's watchdog is SIGKILLed first, as when a whole service is killed at once (it
would otherwise take the group down with the engine). Then a resume in this process: the journal has the
step's process group, the resume says it is still running, and each choice does what it says. Each copy of the
step appends a line to `copies` as it starts (its pid) and as it ends by itself ("end"), so the file tells
whether a second copy started and whether it started only after the first had ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbooks import (
    Lab,
    Nodes,
    drop_exit_status,
    journal,
    nodes_runbook,
    operator_lab,
    wait_for,
    write_runbook,
)

LOCAL = """\
runbook: 1
name: still-running
version: "1.0"
title: A step that outlives its engine
steps:
{steps}"""

STEP = """\
  - id: long
    title: A long command
{on}    run: |
      if [ -s "{dir}/copies" ]; then ps -o pgid= -p $$ >> "{dir}/copies"; exit 0; fi
      ps -o pgid= -p $$ >> "{dir}/copies"
      n=0; while [ ! -e "{dir}/release" ] && [ $n -lt {tenths} ]; do sleep 0.1; n=$((n+1)); done
      echo end >> "{dir}/copies"
  - id: after
    title: After it
{on}    run: touch "{dir}/after"
"""


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name; None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie (this container's init reaps orphans late: `kill -0` would say yes)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def watchdog_of(engine: int) -> int:
    """The engine's watchdog: its child running `python -S -c` (engine/executors/watchdog.py)."""
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[1]) == engine and b"-S\0-c\0" in (entry / "cmdline").read_bytes():
            return int(entry.name)
    raise AssertionError("no watchdog under the engine")


@dataclass(frozen=True)
class Crashed:
    """A run SIGKILLed while its `long` step's sleep ran on `host`; `pid` leads the step's process group."""

    lab: Lab
    book: Path
    host: str
    copies: Path
    pid: int

    def lines(self) -> list[str]:
        return self.copies.read_text().split()


@pytest.fixture(params=["local", "remote"])
def crash(
    request: pytest.FixtureRequest, tmp_path: Path, home: Path, sshd_nodes: Nodes
) -> Iterator[Callable[[int], Crashed]]:
    """`crash(seconds)`: start a run whose step waits `seconds` (or until a `release` file appears beside
    `copies`), SIGKILL the engine while it waits."""
    started: list[int] = []

    def make(seconds: int) -> Crashed:
        if request.param == "local":
            lab = Lab(tmp_path / "work", home)
            lab.root.mkdir()
            directory, host = lab.root, "local"
            text = LOCAL.format(steps=STEP.format(on="", dir=directory, tenths=seconds * 10))
        else:
            [node] = sshd_nodes(1)
            lab = operator_lab(tmp_path / "lab", home, [node])
            directory, host = node.home, node.address
            steps = STEP.format(on="    on: nodes\n", dir="$HOME", tenths=seconds * 10)
            text = nodes_runbook("still-running", steps, [node])
        book = write_runbook(lab.root, text)
        copies = directory / "copies"
        running = lab.start(book, "--yes")
        wait_for(lambda: copies.exists() and copies.read_text().strip(), "the step to start", timeout=30)
        pid = int(copies.read_text().split()[0])
        started.append(pid)
        if request.param == "local":
            os.kill(watchdog_of(running.process.pid), signal.SIGKILL)
        code, _, _ = running.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
        assert alive(pid), "the step's command should outlive its SIGKILLed engine"
        return Crashed(lab, book, host, copies, pid)

    yield make
    for pid in started:  # whatever a test left running
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _journaled_group(crashed: Crashed) -> dict[str, object]:
    [group] = [r for r in journal(crashed.lab.state) if r["type"] == "process-group"]
    fields = _stat(crashed.pid)
    assert fields is not None
    assert group["step"] == "long" and group["host"] == crashed.host and group["attempt"] == 1
    assert group["pgid"] == crashed.pid and group["started"] == fields[19]  # /proc/PID/stat field 22
    return group


def test_kill_stops_the_first_copy_before_the_rerun(crash: Callable[[int], Crashed]) -> None:
    crashed = crash(600)
    _journaled_group(crashed)
    # The operator answers on the terminal: kill it, then yes to running the unknown step again.
    done = crashed.lab.run_here(crashed.book, "--yes", "--resume", stdin="kill\ny\n")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"process group {crashed.pid} from the resumed run is STILL RUNNING" in output
    assert not alive(crashed.pid)
    first, second = crashed.lines()  # the second copy started; the first never reached its end
    assert first == str(crashed.pid) and second != first
    [answer] = [
        r for r in journal(crashed.lab.state) if r["type"] == "confirmation" and "first copy" in r["question"]
    ]
    assert answer["answer"] == "kill" and answer["by"] == "operator" and answer["host"] == crashed.host


def test_leave_starts_nothing_and_stops_the_run(crash: Callable[[int], Crashed]) -> None:
    crashed = crash(600)
    done = crashed.lab.run_here(
        crashed.book, "--yes", "--resume", "--if-still-running", "leave", "--rerun-unknown"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "STILL RUNNING" in output and "was left alone; nothing was started again" in output
    assert alive(crashed.pid)  # left as it was
    assert crashed.lines() == [str(crashed.pid)]  # --rerun-unknown did not start a second copy
    assert not (crashed.copies.parent / "after").exists()


def _answered(lab: Lab, answer: str) -> bool:
    """The journal has the answer to the first-copy question (a line being written is not read yet)."""
    try:
        records = journal(lab.state)
    except ValueError:
        return False
    return any(
        r["type"] == "confirmation" and "first copy" in r["question"] and r["answer"] == answer
        for r in records
    )


def test_wait_lets_the_first_copy_end_then_asks_about_the_rerun(crash: Callable[[int], Crashed]) -> None:
    crashed = crash(600)

    def release_once_waiting() -> None:  # the first copy ends by itself only once the resume waits for it
        wait_for(lambda: _answered(crashed.lab, "wait"), "the resume to wait", timeout=60)
        (crashed.copies.parent / "release").touch()

    releaser = threading.Thread(target=release_once_waiting, daemon=True)
    releaser.start()
    done = crashed.lab.run_here(
        crashed.book, "--yes", "--resume", "--if-still-running", "wait", "--rerun-unknown"
    )
    releaser.join(5)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "STILL RUNNING" in output and "has ended by itself" in output
    if crashed.host == "local":  # the rerun began after the end
        assert crashed.lines() == [str(crashed.pid), "end", crashed.lines()[2]]
    else:  # the node kept its exit status: done, not run again (tests/test_remote_survival.py)
        assert crashed.lines() == [str(crashed.pid), "end"] and "ended there with exit 0" in output
    assert (crashed.copies.parent / "after").exists()
    [answer] = [
        r for r in journal(crashed.lab.state) if r["type"] == "confirmation" and "first copy" in r["question"]
    ]
    assert answer["answer"] == "wait" and answer["by"] == "--if-still-running"


def test_a_group_no_longer_running_goes_straight_to_the_unknown_question(
    crash: Callable[[int], Crashed],
) -> None:
    crashed = crash(600)
    if crashed.host != "local":  # its wrapper first: the node keeps no exit status, as after a reboot
        drop_exit_status(crashed.pid)
    os.killpg(crashed.pid, signal.SIGKILL)
    wait_for(lambda: not alive(crashed.pid), "the first copy to die")
    # No flag, no answer: the unknown-outcome rule still holds (not confirmed: stop), and it is said why.
    done = crashed.lab.run_here(crashed.book, "--yes", "--resume")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"process group {crashed.pid} from the resumed run is no longer running" in output
    assert "outcome is unknown" in output and crashed.lines() == [str(crashed.pid)]


def test_a_wrong_choice_is_a_usage_error(tmp_path: Path, home: Path) -> None:
    lab = Lab(tmp_path, home)
    book = write_runbook(tmp_path, LOCAL.format(steps="  - id: a\n    title: A\n    run: 'true'\n"))
    done = lab.run_here(book, "--resume", "--if-still-running", "maybe")
    assert done.returncode == 2
    assert "--if-still-running 'maybe': choose one of wait, kill, leave" in done.stdout + done.stderr


def test_a_reused_pid_is_not_taken_for_the_journaled_group() -> None:
    """The leader's start time tells the journaled group from a later process that got the same id."""
    from engine.executors import LocalExecutor

    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        fields = _stat(sleeper.pid)
        assert fields is not None
        executor = LocalExecutor()
        assert executor.group_alive(sleeper.pid, fields[19])
        assert not executor.group_alive(sleeper.pid, str(int(fields[19]) - 1))  # an earlier leader, gone
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not executor.group_alive(sleeper.pid, fields[19])
