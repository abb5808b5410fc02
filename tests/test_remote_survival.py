"""A remote command that prints as it goes outlives its engine (SIGKILL) and its connection (the node's sshd
session process killed); a resume shows what it printed and how it ended, and journals that.

Real sshd node, real signals. The command prints a line on each stream every 0.2 s for 3 s, then touches
`chatty.done`: before the wrapper kept the output on the node, its next line after the engine or the
connection was gone met a closed pipe (SIGPIPE) and it died half-way, `chatty.done` never appeared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_connection_loss import sshd_session_of

from engine.executors import nodefiles
from engine.executors.wrapper import command as _command
from engine.executors.wrapper import environment as _environment
from engine.executors.wrapper import job as _job
from runbooks import Lab, Nodes, journal, nodes_runbook, operator_lab, wait_for

pytestmark = pytest.mark.ssh

STEPS = """\
  - id: chatty
    title: A command that logs as it goes
    on: nodes
    run: |
      if [ -e "$HOME/chatty.pid" ]; then echo second copy >> "$HOME/copies"; exit 0; fi
      ps -o pgid= -p $$ > "$HOME/chatty.pid"  # its group: the wrapper leads it
      i=0
      while [ $i -lt 15 ]; do
        echo "line $i"; echo "err $i" >&2
        [ $i = 2 ] && touch "$HOME/chatty.half"
        sleep 0.2; i=$((i+1))
      done
      touch "$HOME/chatty.done"
      exit {code}
  - id: after
    title: After it
    on: nodes
    run: touch "$HOME/after"
"""
LINES = [f"line {i}" for i in range(15)]


def _group_gone(pgid: int) -> bool:
    """No process left in the group (zombies included: the node's files are complete only then)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
        except OSError:
            continue
        if fields and int(fields[2]) == pgid:
            return False
    return True


@pytest.fixture
def lab(tmp_path: Path, home: Path, sshd_nodes: Nodes) -> Iterator[Lab]:
    lab = operator_lab(tmp_path / "lab", home, sshd_nodes(1))
    yield lab
    pid = lab.nodes[0].home / "chatty.pid"
    if pid.exists():
        try:
            os.killpg(int(pid.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _start_and_cut(lab: Lab, cut: str, code: int = 0) -> int:
    """Start the run; once the command printed 3 lines, SIGKILL the engine or drop its connection."""
    [node] = lab.nodes
    lab.write(nodes_runbook("chatty", STEPS.format(code=code), [node]))
    running = lab.start(lab.book, "--yes")
    wait_for(lambda: (node.home / "chatty.half").exists(), "the command to be half-way", timeout=30)
    pgid = int((node.home / "chatty.pid").read_text())
    if cut == "engine":
        assert running.stop(signal.SIGKILL)[0] == -signal.SIGKILL
    else:
        os.kill(sshd_session_of(pgid), signal.SIGKILL)
        exit_code, out, err = running.finish()
        assert exit_code == 1 and "lost the connection" in out + err
    return pgid


def _node_files(lab: Lab, pgid: int) -> list[Path]:
    return sorted((lab.nodes[0].home / nodefiles.DIR).glob(f"{pgid}-*"))


def _ends(lab: Lab, step: str) -> list[dict[str, object]]:
    return [r for r in journal(lab.state) if r["type"] == "step-end" and r["step"] == step]


@pytest.mark.parametrize("cut", ["engine", "connection"])
def test_a_chatty_command_runs_to_its_end_and_a_resume_records_how_it_ended(lab: Lab, cut: str) -> None:
    [node] = lab.nodes
    pgid = _start_and_cut(lab, cut)
    wait_for(lambda: (node.home / "chatty.done").exists(), "the command to reach its end", timeout=30)
    wait_for(lambda: _group_gone(pgid), "the command's group to end", timeout=30)
    [out] = [f for f in _node_files(lab, pgid) if f.suffix == ".out"]
    assert out.read_text().splitlines() == LINES  # all of it, on the node, readable by its account only
    assert out.stat().st_mode & 0o777 == 0o600 and out.parent.stat().st_mode & 0o777 == 0o700
    assert out.with_suffix(".status").read_text() == "0\n"

    resumed = lab.run_here(lab.book, "--yes", "--resume")  # no flag, no terminal: nothing to ask
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output
    assert "no longer running" in output and "it ended there with exit 0; its last lines:" in output
    assert "line 14" in output and "err 14" in output
    *before, end = _ends(lab, "chatty")  # the node's outcome; before it, the lost connection's if any
    assert [e["status"] for e in before] == ([] if cut == "engine" else ["unknown"])
    assert (end["status"], end["exit_code"]) == ("ok", 0) and "status file" in str(end["reason"])
    assert end["stdout_tail"] == "\n".join(LINES[-nodefiles.TAIL_LINES :])
    assert not (node.home / "copies").exists()  # done: not run again
    assert (node.home / "after").exists()
    assert _node_files(lab, pgid) == []  # journaled, so deleted


def test_wait_waits_for_the_first_copy_and_records_its_exit_status(lab: Lab) -> None:
    """It fails (exit 3) after the engine is gone: the failure is journaled, and the resume runs it again."""
    [node] = lab.nodes
    pgid = _start_and_cut(lab, "engine", code=3)
    assert not (node.home / "chatty.done").exists()  # still running when the resume starts
    resumed = lab.run_here(lab.book, "--yes", "--resume", "--if-still-running", "wait")
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output
    assert "STILL RUNNING" in output and "has ended by itself" in output
    assert "it ended there with exit 3" in output and "line 14" in output
    assert [(e["status"], e["exit_code"]) for e in _ends(lab, "chatty")] == [("failed", 3), ("ok", 0)]
    assert (node.home / "copies").read_text() == "second copy\n"  # a failed step runs again
    assert (node.home / "chatty.done").exists() and _node_files(lab, pgid) == []


def test_a_finished_run_leaves_nothing_on_the_node(lab: Lab) -> None:
    """Each command's files go once its end came: with the next command there, the last ones at close."""
    [node] = lab.nodes
    lab.write(nodes_runbook("chatty", STEPS.format(code=0), [node]))
    done = lab.run_here(lab.book, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (node.home / "chatty.done").exists() and (node.home / "after").exists()
    # The close does not wait for its `rm` (a round trip less per host and run: sshd has started it when the
    # engine lets go), so the last files may outlive the engine by the moment the `rm` takes.
    empty = lambda: list((node.home / nodefiles.DIR).iterdir()) == []  # noqa: E731
    wait_for(empty, "the close's rm to delete the last command's files", timeout=10)


def test_the_node_keeps_the_first_8_mib_of_a_stream_and_the_channel_gets_all(tmp_path: Path) -> None:
    """The wrapper as sshd runs it (here under /bin/sh, HOME a temporary directory): the file is cut at `CAP`
    (`ulimit -f` on its `tee`), the live stream is not, and a resume's reading says so."""
    size = nodefiles.CAP + (1 << 20)
    script = f"head -c {size} /dev/zero | tr '\\0' x; echo; echo end; echo oops >&2"
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    process = subprocess.run(
        ["/bin/sh", "-c", _command()],
        input=_job("marker", "sh", None, script) + _environment({}) + b"\n",  # and the go
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0 and process.stdout == b"x" * size + b"\nend\n", process.stderr[-300:]
    [out] = (tmp_path / nodefiles.DIR).glob("*.out")
    assert out.stat().st_size == nodefiles.CAP and out.stat().st_mode & 0o777 == 0o600
    read, separator = nodefiles.read_script(out.stem)
    answer = subprocess.run(["/bin/sh", "-c", read], capture_output=True, env=env, timeout=30, check=True)
    ended = nodefiles.parse(answer.stdout.decode(), separator)
    assert ended is not None and (ended.exit_code, ended.stderr, ended.cut) == (0, "oops\n", ("stdout",))


def test_closing_sweeps_what_a_crash_left_long_ago_and_keeps_the_rest(tmp_path: Path) -> None:
    """The close's cleanup (here under /bin/sh, HOME a temporary directory): our files go; of what is left, a
    crash's leftover over `KEEP_DAYS` days old goes, a newer one (a command a resume may still ask about)
    stays; with nothing left once ours are gone, it ends there (nothing to sweep)."""
    files = tmp_path / nodefiles.DIR
    files.mkdir(parents=True)
    ours, old, recent = files / "11-7.out", files / "12-8.out", files / "13-9.status"
    for path in (ours, old, recent):
        path.write_text("x\n")
    long_ago = time.time() - (nodefiles.KEEP_DAYS + 1) * 86400
    os.utime(old, (long_ago, long_ago))
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    script = nodefiles.forget_script(["11-7"], sweep=True)
    subprocess.run(["/bin/sh", "-c", script], env=env, timeout=30, check=True)
    assert sorted(p.name for p in files.iterdir()) == ["13-9.status"]
    script = nodefiles.forget_script(["13-9"], sweep=True)
    subprocess.run(["/bin/sh", "-c", script], env=env, timeout=30, check=True)
    assert list(files.iterdir()) == []
