from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.errors import JournalError, LockHeld
from engine.locking import RunLock, holder

REPO = Path(__file__).resolve().parent.parent

HOLD_LOCK = """
import sys, time
from pathlib import Path
from engine.locking import RunLock
RunLock(Path(sys.argv[1]), sys.argv[2], run_id="20261126T113722Z-abcdef").acquire()
print("locked", flush=True)
time.sleep(300)
"""


@pytest.fixture
def lock_in_subprocess(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start real processes that take a lock and keep it until they are killed."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(tmp_path), name], stdout=subprocess.PIPE, text=True, env=env
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "locked\n"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_acquire_and_release(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "deploy", run_id="r1")
    lock.acquire()
    assert lock.path == tmp_path / "locks" / "deploy.lock"
    found = holder(tmp_path, "deploy")
    assert found is not None and (found.pid, found.run_id) == (os.getpid(), "r1")
    lock.release()
    lock.release()
    assert holder(tmp_path, "deploy") is None
    with RunLock(tmp_path, "deploy"):
        assert holder(tmp_path, "deploy") is not None
    assert holder(tmp_path, "deploy") is None


def test_second_run_is_refused_with_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "deploy", run_id="r1"):
        with pytest.raises(
            LockHeld, match=rf"'deploy' is being run by .+@.+ \(pid {os.getpid()}\) since .+, run r1"
        ):
            RunLock(tmp_path, "deploy").acquire()
        with RunLock(tmp_path, "other"):
            pass
    with RunLock(tmp_path, "deploy"):
        pass


def test_holder_is_none_without_a_lock_file(tmp_path: Path) -> None:
    assert holder(tmp_path, "never-run") is None


def test_runbook_names_become_safe_file_names(tmp_path: Path) -> None:
    with RunLock(tmp_path, "../team/deploy") as lock:
        assert lock.path.parent == tmp_path / "locks"
        assert holder(tmp_path, "../team/deploy") is not None


def test_lock_dir_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "locks").write_text("")
    with pytest.raises(JournalError, match=r"cannot create lock file .*deploy.lock"):
        RunLock(tmp_path, "deploy").acquire()


def test_live_process_holds_the_lock_and_sigkill_releases_it(
    tmp_path: Path, lock_in_subprocess: Callable[[str], subprocess.Popen[str]]
) -> None:
    process = lock_in_subprocess("deploy")
    with pytest.raises(LockHeld, match=rf"\(pid {process.pid}\) since .*, run 20261126T113722Z-abcdef"):
        RunLock(tmp_path, "deploy").acquire()
    found = holder(tmp_path, "deploy")
    assert found is not None and found.pid == process.pid

    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (
        f'"pid": {process.pid}' in (tmp_path / "locks" / "deploy.lock").read_text()
    )  # a dead run's leftover
    assert holder(tmp_path, "deploy") is None
    with RunLock(tmp_path, "deploy", run_id="r2"):
        found = holder(tmp_path, "deploy")
        assert found is not None and (found.pid, found.run_id) == (os.getpid(), "r2")
