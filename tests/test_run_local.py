"""`runbook run` on this machine: the runner's behaviour (confirmations, manual steps, `when`, retries, expect,
--only/--from, --plan, timeout, Ctrl-C), the ha-rollback runbook with `--target nodes=local`, and `demo`.

Each test runs the command line in a temporary directory and asserts its exit code, its output and what the
commands left behind (files they touched, calls recorded by stand-ins). No sshd. Most run the CLI in this
process (`Lab.run_here`: same arguments, directory, environment and stdin; real local commands); the main
job, the demo, the terminal, the timeout and Ctrl-C run it as a process of its own (`Lab.run`/`Lab.start`).
"""

from __future__ import annotations

import os
import pty
import resource
import secrets
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from runbooks import (
    CALICO_ID,
    CLI_TIMEOUT,
    COMPONENTS,
    DOCKER_PS,
    FLANNEL_ID,
    HA_ROLLBACK,
    Lab,
    Record,
    cli,
    cli_env,
    journal,
    local_stand_in,
    processes_matching,
    run_dirs,
    summary_rows,
    wait_for,
    write_rollback,
    write_runbook,
)


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    """Runs start in tmp_path/work (where local steps touch their files; the journal goes to work/state)."""
    path = tmp_path / "work"
    path.mkdir()
    return Lab(path, home)


def book(lab: Lab, steps: str, extra: str = "") -> Path:
    """A runbook of local `steps` (YAML, indented two spaces) beside the lab's directory."""
    text = f'runbook: 1\nname: local-book\nversion: "1.0"\ntitle: Local acceptance runbook\n{extra}steps:\n{steps}'
    return write_runbook(lab.root.parent, text)


def records(lab: Lab, kind: str) -> list[Record]:
    return [r for r in journal(lab.state) if r["type"] == kind]


# -- the main job, with its nodes on this machine, and the demo ---------------------------------------


def test_ha_rollback_with_nodes_run_locally(lab: Lab) -> None:
    addresses = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    roles = "[controlplane, etcd, worker]"
    write_rollback(
        lab, "nodes:\n" + "".join(f"  - {{address: {a}, user: rancher, role: {roles}}}\n" for a in addresses)
    )
    local_stand_in(lab.bin_dir, "docker", lab.calls_log, stdout=DOCKER_PS)
    done = lab.run(HA_ROLLBACK, *lab.rollback_vars(), "--target", "nodes=local", "--yes", "--confirm-manual")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = lab.calls()
    names = [c["argv"][0] for c in calls]
    first_docker, last_docker = names.index("docker"), len(names) - 1 - names[::-1].index("docker")
    assert names[:first_docker] == ["rke_linux-amd64", "rke_linux-amd64"]
    assert names[last_docker + 1 :] == ["kubectl", "kubectl"]
    for address in addresses:  # each "node" (RUNBOOK_HOST) got every restart exactly once
        restarts = [c["argv"][1:] for c in calls if c["host"] == address and c["argv"][1] == "restart"]
        assert restarts == [["restart", *COMPONENTS], ["restart", FLANNEL_ID], ["restart", CALICO_ID]], (
            address
        )
        assert f"{address} | {DOCKER_PS.splitlines()[0]}" in done.stdout
    assert "connecting to" not in done.stdout  # no SSH at all
    assert ("restart-components", "10.0.0.12", "ok") in summary_rows(done.stdout)


def test_demo_runs_end_to_end_without_sshd(tmp_path: Path, home: Path) -> None:
    path = "/usr/local/bin:/usr/bin:/bin"  # whatever else the developer has on PATH plays no part
    done = Lab(tmp_path, home).run(task="demo", env={"PATH": path})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered by --confirm-manual: v2.0.8" in done.stdout
    assert "the etcd restore's approval is answered by the demo too (--break-glass" in done.stdout
    assert "BREAK GLASS: " in done.stdout and "demo: a throwaway lab with no second operator" in done.stdout
    assert "run finished: every step succeeded" in done.stdout
    assert "connecting to" not in done.stdout
    assert not (home / ".ssh").exists() and not (tmp_path / ".runbook").exists()  # nothing left behind


def test_demo_on_a_terminal_draws_progress(tmp_path: Path, home: Path) -> None:
    """On a terminal the output is rendered by rich, with a progress bar for the fan-out."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            cli("demo"),
            cwd=tmp_path,
            env=cli_env(home),
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_until_eof, args=(controller, chunks), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=60)
    finally:
        process.kill()
        reader.join(10)
        os.close(controller)
    text = b"".join(chunks).decode(errors="replace")
    assert code == 0, text
    assert "3/3" in text and "run finished: every step succeeded" in text


def _read_until_eof(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            return
        if not data:
            return
        chunks.append(data)


# -- confirmations and manual steps --------------------------------------------------------------------

TYPED = """\
  - id: drop
    title: Drop the staging database
    confirm: {question: This deletes every row., type: "{{ cluster }}"}
    run: touch dropped
"""
TYPED_VARS = "variables:\n  cluster: {type: string, default: staging-eu}\n"


@pytest.mark.parametrize(("stdin", "code"), [("staging-eu\n", 0), ("staging-us\n", 1), ("y\n", 1), ("", 1)])
def test_typed_confirmation(lab: Lab, stdin: str, code: int) -> None:
    done = lab.run_here(book(lab, TYPED, TYPED_VARS), stdin=stdin)
    assert done.returncode == code, done.stdout + done.stderr
    assert (lab.root / "dropped").exists() is (code == 0)
    assert "Type 'staging-eu' to go on (Enter to decline):" in done.stdout
    [confirmation] = records(lab, "confirmation")
    assert confirmation["by"] == "operator" and confirmation["ok"] is (code == 0)
    if code:
        assert "step 'drop' was declined" in done.stderr


@pytest.mark.parametrize(("stdin", "code"), [("y\n", 0), ("n\n", 1), ("", 1)])
def test_yes_no_confirmation(lab: Lab, stdin: str, code: int) -> None:
    steps = "  - id: restart\n    title: Restart\n    confirm: Restart the service now?\n    run: touch restarted\n"
    done = lab.run_here(book(lab, steps), stdin=stdin)
    assert done.returncode == code, done.stdout + done.stderr
    assert (lab.root / "restarted").exists() is (code == 0)
    assert "Restart the service now? [y/N]" in done.stdout


def test_warnings_are_confirmed_once_before_anything_runs(lab: Lab) -> None:
    path = book(lab, "  - id: a\n    title: A\n    run: touch a\n", "warnings: [This is destructive.]\n")
    declined = lab.run_here(path, stdin="n\n")
    assert declined.returncode == 1 and "not confirmed: nothing ran" in declined.stdout
    assert not (lab.root / "a").exists()
    assert lab.run_here(path, stdin="yes\n").returncode == 0 and (lab.root / "a").exists()


MANUAL = (
    TYPED
    + """\
  - id: check
    title: Read the version
    manual: Read the version in the corner of the page.
    record: {prompt: Version shown, expect: v2.0.8}
  - id: after
    title: After the check
    run: touch after
"""
)


@pytest.mark.parametrize(("stdin", "code"), [("v2.0.8\n", 0), ("v2.0.7\n", 1), ("", 1)])
def test_yes_answers_confirmations_but_never_manual_steps(lab: Lab, stdin: str, code: int) -> None:
    done = lab.run_here(book(lab, MANUAL, TYPED_VARS), "--yes", stdin=stdin)
    assert done.returncode == code, done.stdout + done.stderr
    assert (lab.root / "dropped").exists()  # the confirmation was answered by --yes
    assert "— yes (--yes)" in done.stdout
    assert "Version shown:" in done.stdout  # the manual step asked the operator
    [manual] = records(lab, "manual")
    assert manual["by"] == "operator" and manual["answer"] == (stdin.strip() or None)
    assert (lab.root / "after").exists() is (code == 0)  # a wrong (or no) answer stops the run
    if stdin == "":
        assert "(no answer: end of input)" in done.stdout
    elif code:
        assert "expected 'v2.0.8', got 'v2.0.7'" in done.stdout


def test_confirm_manual_answers_and_says_so(lab: Lab) -> None:
    done = lab.run_here(book(lab, MANUAL, TYPED_VARS), "--yes", "--confirm-manual")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered by --confirm-manual: v2.0.8" in done.stdout
    [manual] = records(lab, "manual")
    assert manual["by"] == "--confirm-manual" and manual["answer"] == "v2.0.8"
    assert (lab.root / "after").exists()


def test_a_wrong_recorded_answer_is_asked_again(lab: Lab) -> None:
    """Issue 23: a typo is not a failure: asked again (3 tries in all), like a typed confirmation."""
    done = lab.run_here(book(lab, MANUAL, TYPED_VARS), "--yes", stdin="v2.0.7\nv2.0.8\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'v2.0.7' is not what was expected ('v2.0.8'); type it again (2 more), or press Enter to stop" in (
        " ".join(done.stdout.split())
    )
    [manual] = records(lab, "manual")
    assert manual["answer"] == "v2.0.8" and manual["ok"] is True and (lab.root / "after").exists()
    three = lab.run_here(book(lab, MANUAL, TYPED_VARS), "--yes", stdin="a\nb\nc\nv2.0.8\n")
    assert three.returncode == 1 and "expected 'v2.0.8', got 'c'" in three.stdout


def test_confirm_manual_with_a_matches_record_is_refused_before_anything_runs(lab: Lab) -> None:
    steps = MANUAL.replace(
        "record: {prompt: Version shown, expect: v2.0.8}",
        "record: {prompt: Seen, expect: {matches: 'v[0-9.]+'}}",
    )
    done = lab.run_here(book(lab, steps, TYPED_VARS), "--yes", "--confirm-manual")
    assert done.returncode == 2
    assert (
        "--confirm-manual cannot answer check: a 'matches' record wants the operator's own answer"
        in done.stderr
    )
    assert not (lab.root / "dropped").exists() and not lab.state.exists()


# -- when, retries, expect, continue_on_error ----------------------------------------------------------


def test_when_false_skips_the_step_and_says_why(lab: Lab) -> None:
    steps = """\
  - id: prod-only
    title: Only in production
    when: stage == 'prod'
    run: touch prod
  - id: always
    title: Always
    run: touch always
"""
    done = lab.run_here(book(lab, steps, "variables:\n  stage: {type: string, default: staging}\n"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "when: stage == 'prod' is false" in done.stdout
    assert not (lab.root / "prod").exists() and (lab.root / "always").exists()
    assert summary_rows(done.stdout) == [("prod-only", "local", "skipped"), ("always", "local", "ok")]


FLAKY = """\
  - id: flaky
    title: Fails the first time
    retries: {retries}
    run: |
      echo attempt >> count
      test "$(wc -l < count)" -ge 2
"""


@pytest.mark.parametrize(("retries", "code", "count"), [("{count: 2, delay: 50ms}", 0, "2"), ("0", 1, "1")])
def test_retries_run_a_failing_command_again(lab: Lab, retries: str, code: int, count: str) -> None:
    done = lab.run_here(book(lab, FLAKY.format(retries=retries)))
    assert done.returncode == code, done.stdout + done.stderr
    assert (lab.root / "count").read_text().count("attempt") == int(count)
    assert ("local: attempt 1 failed; retrying" in done.stdout) is (code == 0)
    assert [r["attempt"] for r in records(lab, "step-end")] == list(range(1, int(count) + 1))


def test_expect_stdout_contains(lab: Lab) -> None:
    steps = """\
  - id: health
    title: Health
    expect: {stdout_contains: healthy}
    run: echo degraded
  - id: after
    title: After
    run: touch after
"""
    done = lab.run_here(book(lab, steps))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "output does not contain 'healthy'" in done.stdout
    assert summary_rows(done.stdout) == [("health", "local", "failed")] and not (lab.root / "after").exists()


def test_continue_on_error_goes_on_and_ends_ok_with_a_warning(lab: Lab) -> None:
    """Issue 23: a tolerated failure ends the run ok (exit 0), said in the summary, never "after fixing";
    a resume (of a run that failed later) does not run it again."""
    steps = """\
  - id: optional
    title: Optional
    continue_on_error: true
    run: echo tried >> optional; exit 4
  - id: after
    title: After
    run: touch after; test -e fixed
"""
    (lab.root / "fixed").touch()
    done = lab.run_here(book(lab, steps))
    assert done.returncode == 0 and (lab.root / "after").exists()
    assert "continue_on_error: going on" in done.stdout
    assert "run finished, with tolerated failures (continue_on_error): optional@local" in done.stdout
    assert "after fixing" not in done.stdout
    assert ("optional", "local", "failed") in summary_rows(done.stdout)
    assert records(lab, "run-end")[0]["status"] == "ok"
    (lab.root / "fixed").unlink()
    (lab.root / "optional").unlink()
    shutil.rmtree(lab.state)
    failed = lab.run_here(book(lab, steps))
    assert (
        failed.returncode == 1
        and "run failed: after@local; resume with --resume after fixing" in failed.stdout
    )
    (lab.root / "fixed").touch()
    resumed = lab.run_here(book(lab, steps), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (lab.root / "optional").read_text() == "tried\n"  # once: the resume did not run it again
    assert ("optional", "local", "done before") in summary_rows(resumed.stdout)


# -- choosing steps, reviewed plans --------------------------------------------------------------------

ABC = "".join(f"  - id: {s}\n    title: Step {s}\n    run: echo {s} >> order\n" for s in "abc")


@pytest.mark.parametrize(("flags", "ran"), [(["--only", "b"], "b"), (["--from", "b"], "b c"), ([], "a b c")])
def test_only_and_from(lab: Lab, flags: list[str], ran: str) -> None:
    done = lab.run_here(book(lab, ABC), *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (lab.root / "order").read_text().split() == ran.split()


def test_only_an_unknown_step_is_a_usage_error(lab: Lab) -> None:
    done = lab.run_here(book(lab, ABC), "--only", "d")
    assert done.returncode == 2 and "no step 'd'; steps: a, b, c" in done.stderr
    assert not (lab.root / "order").exists()


def test_plan_refuses_a_changed_plan_and_accepts_the_same(lab: Lab) -> None:
    path = book(lab, ABC)
    saved = lab.root.parent / "reviewed.json"
    lab.run_here(path, "--save", saved, task="plan").check_returncode()
    path.write_text(path.read_text().replace("echo b >>", "echo B >>"))
    changed = lab.run_here(path, "--plan", saved)
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "steps that differ: b" in changed.stderr and not (lab.root / "order").exists()
    path.write_text(path.read_text().replace("echo B >>", "echo b >>"))
    same = lab.run_here(path, "--plan", saved)
    assert same.returncode == 0, same.stdout + same.stderr
    assert (lab.root / "order").read_text().split() == ["a", "b", "c"]


# -- timeout and Ctrl-C on this machine ----------------------------------------------------------------


def test_timeout_kills_the_local_command(lab: Lab) -> None:
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    steps = f"  - id: hang\n    title: Hang\n    timeout: 1s\n    run: sh -c 'sleep {marker}; true'\n"
    done = lab.run(book(lab, steps))  # an hour's sleep: only the kill lets it return (lab.run's own timeout)
    assert done.returncode == 1, done.stdout + done.stderr
    assert summary_rows(done.stdout) == [("hang", "local", "timed out")]
    wait_for(lambda: processes_matching(f"sleep {marker}") == [], "the killed sleep to be gone", timeout=5)
    [run_dir] = run_dirs(lab.state)
    shown = lab.run_here("--run-id", run_dir.name, task="runs")  # the history words it as the summary does
    statuses = [line.split("│")[3].strip() for line in shown.stdout.splitlines() if "│ hang" in line]
    assert statuses == ["timed out"]


def hour_long() -> tuple[str, str]:
    """A step that touches `started`, then runs for an hour; and its `sleep`'s argument, unique to find it by."""
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    return (
        marker,
        f"""\
  - id: long
    title: Run for an hour
    run: |
      touch started
      sh -c 'sleep {marker}; true'
""",
    )


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_ctrl_c_stops_the_local_command(lab: Lab, inherited: str) -> None:
    """Also when the engine starts with SIGINT ignored (`runbook run … &` from a script, nohup)."""
    marker, steps = hour_long()
    steps += "  - id: after\n    title: Never reached\n    run: touch after\n"
    running = lab.start(book(lab, steps), ignoring=[signal.SIGINT] if inherited == "ignored" else [])
    try:
        wait_for(lambda: (lab.root / "started").exists(), "the command to start", timeout=20)
        wait_for(lambda: len(processes_matching(f"sleep {marker}")) >= 2, "the sleep", timeout=5)
    finally:
        code, out, err = running.stop(signal.SIGINT, timeout=10)
    assert code == 130, out + err
    wait_for(lambda: processes_matching(f"sleep {marker}") == [], "the sleep to be gone", timeout=5)
    assert summary_rows(out) == [("long", "local", "interrupted")] and not (lab.root / "after").exists()
    assert records(lab, "interrupted")[0]["signal"] == "SIGINT"
    [end] = records(lab, "run-end")
    assert end["status"] == "interrupted" and end["exit_code"] == 130


def test_a_local_command_dies_with_the_engine(lab: Lab) -> None:
    """SIGKILL of the engine (no handler runs): its local command's whole group goes too, so a resume with
    --rerun-unknown cannot start a second copy beside the first. Before, the command ran on for an hour."""
    marker, steps = hour_long()
    running = lab.start(book(lab, steps))
    try:
        wait_for(lambda: len(processes_matching(f"sleep {marker}")) >= 2, "the sleep", timeout=20)
    finally:
        running.stop(signal.SIGKILL)
    wait_for(
        lambda: processes_matching(f"sleep {marker}") == [], "the sleep to die with the engine", timeout=10
    )


def test_an_output_file_that_cannot_be_written_stops_the_step_and_ends_it_in_the_journal(lab: Lab) -> None:
    """The step's output file meets a real failing write (the engine runs under RLIMIT_FSIZE: EFBIG, as a
    full disk fails with ENOSPC): its command is stopped at once instead of waited for (an hour here), and
    its `step-start` gets its end; the run stops there, exit 1, with its `run-end`."""
    limit = 32 * 1024
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    steps = f"""\
  - id: chatty
    title: Print more than the output file may hold, then run for an hour
    run: |
      yes 0123456789 | head -n 10000
      sh -c 'sleep {marker}; true'
  - id: after
    title: Never reached
    run: touch after
"""
    done = subprocess.run(  # an hour's sleep: only the stop lets it return (bounded by the timeout)
        lab.argv("run", book(lab, steps)),
        cwd=lab.root,
        env=lab.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot write output file" in done.stderr and "File too large" in done.stderr
    wait_for(lambda: processes_matching(f"sleep {marker}") == [], "the stopped sleep to be gone", timeout=5)
    assert summary_rows(done.stdout) == [("chatty", "local", "unknown")]
    [start], [end] = records(lab, "step-start"), records(lab, "step-end")
    assert (start["step"], end["step"], end["status"]) == ("chatty", "chatty", "unknown")
    assert end["reason"].startswith("broken off by an error: cannot write output file ")
    assert end["reason"].endswith("chatty@local.log: File too large")
    [run_end] = records(lab, "run-end")
    assert (run_end["status"], run_end["exit_code"]) == ("failed", 1)
    [output] = lab.state.glob("runs/*/chatty@local.log")
    assert 0 < output.stat().st_size <= limit and not (lab.root / "after").exists()


def test_a_secret_as_an_env_value_reaches_the_command_and_nothing_else(lab: Lab) -> None:
    """`env: {TOKEN: "{{ token }}"}` passes the value like a secret in `run`: in the environment, masked."""
    token = "s3cr3t-" + secrets.token_hex(8)
    steps = """\
  - id: use
    title: Use the token
    env: {TOKEN: "{{ token }}"}
    run: printf '%s' "$TOKEN" > got && echo "token is $TOKEN"
"""
    path = book(lab, steps, "variables:\n  token: {type: string, secret: true}\n")
    done = lab.run_here(path, env={"RUNBOOK_VAR_TOKEN": token})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (lab.root / "got").read_text() == token
    assert token not in done.stdout + done.stderr and "token is ********" in done.stdout
    shown = lab.run_here(path, task="plan", env={"RUNBOOK_VAR_TOKEN": token})
    assert shown.returncode == 0 and "env: TOKEN='********'" in shown.stdout and token not in shown.stdout
    files = [f for f in lab.state.rglob("*") if f.is_file()]
    assert any(f.name == "journal.jsonl" for f in files) and any(f.name.startswith("use@") for f in files)
    for file in files:
        assert token not in file.read_text(errors="replace"), file


# -- secrets in `when` -----------------------------------------------------------------------------------

SECRET = "s3cr3t-registry-t0ken"
WHEN_SECRET = """\
  - id: login
    title: Log in to the registry
    when: registry_token | length > 0
    run: touch logged-in
  - id: rotate
    title: Rotate the default token
    when: registry_token == 'changeme'
    run: touch rotated
"""


def test_a_secret_in_when_decides_and_is_never_shown(lab: Lab) -> None:
    path = book(
        lab, WHEN_SECRET, "variables:\n  registry_token: {type: string, secret: true, required: true}\n"
    )
    done = lab.run(path, env={"RUNBOOK_VAR_REGISTRY_TOKEN": SECRET})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (lab.root / "logged-in").exists() and not (lab.root / "rotated").exists()
    assert "when: registry_token == 'changeme' is false" in done.stdout
    planned = lab.run(path, task="plan", env={"RUNBOOK_VAR_REGISTRY_TOKEN": SECRET})
    assert "skipped — when: registry_token == 'changeme' is false" in planned.stdout
    every_file = "".join(p.read_text(errors="replace") for p in lab.state.rglob("*") if p.is_file())
    for shown in (done.stdout, done.stderr, planned.stdout, planned.stderr, every_file):
        assert SECRET not in shown
