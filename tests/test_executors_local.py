"""LocalExecutor, and `ExecutorContract`: the behaviour every executor must show (SSH reuses it).

Real processes only. Processes are looked for with `pgrep -f` on a unique `sleep` duration, which also
finds processes started over SSH: the test sshd nodes run on this machine.
"""

from __future__ import annotations

import base64
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.errors import JournalError
from engine.executors import Executor, LocalExecutor, Result
from engine.executors.jobs import KEPT
from engine.executors.local import _GO

MIB = 1024 * 1024


def running(pattern: str) -> list[str]:
    """Command lines of live processes matching `pattern` (zombies have no command line: not matched)."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False).stdout
    return found.splitlines()


def wait_until(condition: Callable[[], object], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def unique_sleep() -> str:
    """`sleep N` with an N no other test (or anything else) uses: a marker pgrep can find."""
    return f"sleep {random.randrange(3_000_000, 9_000_000)}"


class ExecutorContract:
    """Tests for any `Executor`; a subclass provides the `executor` fixture."""

    AT_ONCE = 20  # commands a host runs at once (an SSH host: as many as its session channels allow)

    def test_exit_codes(self, executor: Executor) -> None:
        assert executor.run("exit 0").ok
        failed = executor.run("echo out; echo err >&2; exit 7")
        assert (failed.exit_code, failed.ok, failed.stdout, failed.stderr) == (7, False, "out\n", "err\n")
        assert failed.host == executor.host and failed.command == "echo out; echo err >&2; exit 7"

    def test_multi_line_script_stops_at_first_failing_line(self, executor: Executor) -> None:
        result = executor.run("echo one\nfalse\necho two")
        assert (result.exit_code, result.stdout) == (1, "one\n")

    def test_10_mib_on_both_streams_at_once(self, executor: Executor) -> None:
        script = (
            f"head -c {10 * MIB} /dev/zero | tr '\\0' o &\n"
            f"head -c {10 * MIB} /dev/zero | tr '\\0' e >&2\nwait\nexit 3"
        )
        seen = {"stdout": 0, "stderr": 0}
        result = executor.run(
            script, timeout=60, on_output=lambda s, line: seen.__setitem__(s, seen[s] + len(line))
        )
        assert result.exit_code == 3 and not result.timed_out
        assert seen == {"stdout": 10 * MIB, "stderr": 10 * MIB}  # every byte reached the output file's writer
        for text in (result.stdout, result.stderr):  # one endless line: no whole line to keep in memory
            assert len(text) <= KEPT + 100 and "output cut here" in text

    def test_long_output_is_kept_in_memory_as_its_first_and_last_whole_lines(
        self, executor: Executor
    ) -> None:
        lines: list[str] = []
        result = executor.run("seq 1 300000", timeout=60, on_output=lambda _, line: lines.append(line))
        assert lines == [str(i) for i in range(1, 300001)]
        assert len(result.stdout) <= KEPT + 100  # and the note of the cut
        head, cut, tail = result.stdout.partition(
            "[runbook: output cut here; the step's output file has all of it]\n"
        )
        assert cut and head.startswith("1\n2\n3\n") and tail.endswith("\n299999\n300000\n")
        numbers = [int(n) for n in (head + tail).split()]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # whole lines, in order

    def test_the_script_starts_only_once_its_group_is_journaled(
        self, executor: Executor, tmp_path: Path
    ) -> None:
        """The group leader waits for a go that comes once `on_group` returned (the journal has the group):
        an engine killed before that leaves a script that never started, never a copy nobody knows of."""
        started = tmp_path / "started"
        early: list[bool] = []

        def on_group(pgid: int, when: str | None) -> None:  # a slow journal: would the script run meanwhile?
            early.append(wait_until(started.exists, 0.5))

        result = executor.run(f"touch {started}", on_group=on_group)
        assert result.ok and early == [False] and started.exists()

    def test_a_group_the_journal_refuses_never_gets_its_go(self, executor: Executor, tmp_path: Path) -> None:
        """`on_group` raising (the journal refused the group: a lost lock) means no go: the wrapper ends
        without running the script, and `run()` raises that error once it has."""
        started = tmp_path / "started"

        def on_group(pgid: int, when: str | None) -> None:
            raise JournalError("the lock was taken over")

        with pytest.raises(JournalError, match="the lock was taken over"):
            executor.run(f"touch {started}", on_group=on_group)
        assert not started.exists()

    def test_stdin_is_at_eof(self, executor: Executor) -> None:
        result = executor.run("cat; echo after", timeout=10)
        assert (result.exit_code, result.stdout) == (0, "after\n")
        assert result.duration < 5

    def test_timeout_kills_the_whole_process_group(self, executor: Executor) -> None:
        sleep = unique_sleep()
        result = executor.run(f"{sleep} &\n{sleep}\nwait", timeout=2)
        assert result.timed_out and not result.interrupted and not result.ok
        assert result.exit_code is None
        assert 2 <= result.duration < 6
        assert wait_until(lambda: not running(sleep), 1.0), running(sleep)

    def test_kill_all_from_another_thread(self, executor: Executor) -> None:
        sleep = unique_sleep()
        results: list[Result] = []
        worker = threading.Thread(target=lambda: results.append(executor.run(f"{sleep} & {sleep}; wait")))
        worker.start()
        try:
            assert wait_until(lambda: len(running(sleep)) >= 2), "the command never started"
            started = time.monotonic()
            executor.kill_all()
            assert time.monotonic() - started < 5
        finally:
            worker.join(10)
        assert not worker.is_alive()
        [result] = results
        assert result.interrupted and not result.timed_out and result.exit_code is None
        assert wait_until(lambda: not running(sleep), 1.0), running(sleep)

    def test_on_output_gets_lines_in_order_as_they_arrive(self, executor: Executor) -> None:
        seen: list[tuple[str, str, float]] = []
        script = (
            "i=0; while [ $i -lt 300 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done\n"
            "sleep 1\nprintf 'last\\nno newline'"
        )
        result = executor.run(
            script, on_output=lambda stream, line: seen.append((stream, line, time.monotonic()))
        )
        done = time.monotonic()
        out = [line for stream, line, _ in seen if stream == "stdout"]
        err = [line for stream, line, _ in seen if stream == "stderr"]
        assert out == [f"out {i}" for i in range(300)] + ["last", "no newline"]
        assert err == [f"err {i}" for i in range(300)]
        assert result.stdout.endswith("last\nno newline")
        first_arrived = min(at for _, _, at in seen)
        assert done - first_arrived > 0.7, "lines were not passed on while the command ran"

    def test_a_failing_output_callback_stops_the_command_then_its_error_is_raised(
        self, executor: Executor
    ) -> None:
        """Output that cannot be kept (a full disk under the step's output file) is no reason to wait for
        the command's end: it is stopped as a timeout stops it, and `run()` raises once it is gone."""
        sleep = unique_sleep()
        raised: list[BaseException] = []

        def fail(stream: str, line: str) -> None:
            raise OSError(28, f"No space left on device after {line!r}")

        def run() -> None:
            try:
                executor.run(f"echo one; {sleep}; echo never", on_output=fail)
            except OSError as error:
                raised.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        try:  # a bound for a hang only: without the stop, `run()` waits for a sleep of weeks
            assert wait_until(lambda: not worker.is_alive(), 30.0), "run() waited for the command's end"
        finally:
            subprocess.run(["pkill", "-f", sleep], check=False)
            worker.join(10)
        assert [str(e) for e in raised] == ["[Errno 28] No space left on device after 'one'"]
        assert not running(sleep)

    def test_output_callback_error_is_raised_after_the_command(self, executor: Executor) -> None:
        calls: list[str] = []

        def fail(stream: str, line: str) -> None:
            calls.append(line)
            raise RuntimeError(f"callback broke on {line}")

        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"^callback broke on one$"):
            executor.run(f"printf 'one\\ntwo'; head -c {2 * MIB} /dev/zero", on_output=fail, timeout=30)
        assert calls == ["one"], "called again after it failed"
        assert time.monotonic() - started < 10, "output stopped being read after the callback failed"

    def test_cwd_and_env(self, executor: Executor, tmp_path: Path) -> None:
        result = executor.run(
            'pwd; printf "%s|" "$GREETING" "$EMPTY"',
            cwd=str(tmp_path),
            env={"GREETING": "hello 'big' $world", "EMPTY": ""},
        )
        assert result.stdout == f"{tmp_path}\nhello 'big' $world||"

    def test_shell_is_used(self, executor: Executor) -> None:
        assert executor.run('[ -n "$BASH_VERSION" ]', shell="bash").ok
        assert not executor.run("false; true", shell="bash").ok  # -e holds for any shell

    def test_secret_reaches_the_command_but_no_argument_list(self, executor: Executor) -> None:
        secret = f"s3cr3t-{random.randrange(10**12)}"
        sleep = f"sleep 1.5{random.randrange(10**6):06d}"  # long enough to be seen by `ps`, and unique
        results: list[Result] = []
        script = f'{sleep}\nprintf %s "$API_TOKEN" | base64'
        worker = threading.Thread(
            target=lambda: results.append(executor.run(script, secrets={"API_TOKEN": secret}, timeout=30))
        )
        worker.start()
        snapshots: list[str] = []
        for _ in range(100):  # bounded: about 2 s of `ps` snapshots while the command runs
            snapshots.append(
                subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
            )
            if not worker.is_alive():
                break
            time.sleep(0.02)
        worker.join(10)
        [result] = results
        assert result.ok, result
        assert base64.b64decode(result.stdout) == secret.encode()
        assert any(sleep in snapshot for snapshot in snapshots), "never saw the command running"
        assert not any(secret in snapshot for snapshot in snapshots)
        assert not any(base64.b64encode(secret.encode()).decode() in snapshot for snapshot in snapshots)

    def test_multi_line_secret_arrives_intact(self, executor: Executor) -> None:
        secret = "-----BEGIN KEY-----\nline 'two' \"three\" $four `five`\n\n\n"
        result = executor.run('printf %s "$KEY"', secrets={"KEY": secret})
        assert result.stdout == secret

    def test_bad_environment_names_are_refused(self, executor: Executor) -> None:
        with pytest.raises(ValueError, match=r"environment variable name"):
            executor.run("true", env={"NOT-A-NAME": "x"})
        with pytest.raises(ValueError, match=r"environment variable name"):
            executor.run("true", secrets={"A=B": "x"})

    def test_missing_programs(self, executor: Executor) -> None:
        assert executor.missing_programs(["sh", "runbook-no-such-program", "cat"]) == [
            "runbook-no-such-program"
        ]
        assert executor.missing_programs([]) == []

    def test_platform(self, executor: Executor) -> None:
        assert executor.platform() == "linux"

    def test_20_concurrent_commands(self, executor: Executor, tmp_path: Path) -> None:
        """Each command waits until AT_ONCE of them have started: they finish only if that many run at once."""
        here = tmp_path / "started"
        here.mkdir()

        def script(i: int) -> str:  # waits at most 30 s (600 × 50 ms) for the others, then fails
            return (
                f"touch {here}/{i}; n=0; while [ $(ls {here} | wc -l) -lt {self.AT_ONCE} ]; do"
                f" n=$((n+1)); [ $n -lt 600 ] || exit 9; sleep 0.05; done; echo {i}"
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda i: executor.run(script(i), timeout=60), range(20)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)], "not all ran at once"
        assert all(r.ok for r in results)


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        with LocalExecutor() as executor:
            yield executor

    def test_host_name_and_extra_env(self) -> None:
        executor = LocalExecutor("builder", extra_env={"RUNBOOK_HOST": "builder"})
        result = executor.run('echo "$RUNBOOK_HOST"')
        assert (result.host, result.stdout) == ("builder", "builder\n")

    def test_missing_cwd_or_shell_is_a_failed_command(self, executor: Executor, tmp_path: Path) -> None:
        no_dir = executor.run("true", cwd=str(tmp_path / "nope"))
        assert no_dir.exit_code == 127 and "cannot start" in no_dir.stderr
        no_shell = executor.run("true", shell="runbook-no-such-shell")
        assert no_shell.exit_code == 127 and "runbook-no-such-shell" in no_shell.stderr

    def test_killed_by_a_signal_reports_128_plus_signal(self, executor: Executor) -> None:
        assert executor.run("kill -KILL $$").exit_code == 128 + 9

    def test_invalid_utf8_is_replaced(self, executor: Executor) -> None:
        assert executor.run(r"printf 'caf\303\251 \377\n'").stdout == "café \ufffd\n"

    def test_platform_needs_no_subprocess(self, executor: Executor) -> None:
        assert executor.platform() == sys.platform.rstrip("0123456789")


def test_a_command_whose_go_never_comes_never_starts(tmp_path: Path) -> None:
    """The engine died between starting the command and journaling its group: its stdin ends, no go."""
    started = tmp_path / "started"
    process = subprocess.run(["sh", "-c", _GO, "sh", f"touch {started}"], input=b"", timeout=10, check=False)
    assert process.returncode == 125 and not started.exists()


def test_result_ok_and_tail() -> None:
    result = Result("x", "h", 0, "a\nb\nc\n", "e1\ne2", 0.1)
    assert result.ok and result.tail(lines=2) == "b\nc" and result.tail("stderr", 1) == "e2"
    assert not Result("x", "h", 0, "", "", 0.1, timed_out=True).ok
    assert not Result("x", "h", None, "", "", 0.1, interrupted=True).ok
    assert not Result("x", "h", 1, "", "", 0.1).ok


def test_importing_the_package_does_not_import_paramiko() -> None:
    """`runbook validate` imports engine.executors; paramiko (0.2 s) must wait for the first SSH host."""
    check = "import sys, engine.executors; sys.exit('paramiko' in sys.modules)"
    repo = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", check], cwd=repo, check=False).returncode == 0
