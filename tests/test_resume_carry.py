"""What a resume carries over from the run it continues, end to end with local commands (no sshd):

- finished steps keep what they printed and returned: later templates and `when:` read `steps.<id>` as the
  first session saw it (masked: a secret a step printed is `********` in the journal and after a resume);
- loop items are known by value: a resume with another list is refused unless `--force`, which matches the
  items by value and says what changed;
- an open series of attempts (`retries`) goes on where it stopped instead of starting again.
"""

from __future__ import annotations

import signal

import test_run_local

from runbooks import Lab, journal, journal_path, summary_rows, wait_for

lab = test_run_local.lab  # the local lab: runs start in tmp_path/work, their state in work/state
book = test_run_local.book

OUTPUTS = """\
  - id: a
    title: Print a token
    run: echo token-1234
  - id: s
    title: Print the secret
    run: echo "{{ password }}"
  - id: b
    title: Fails until fixed
    run: test -f fixed
  - id: c
    title: Read a's output
    run: echo c got {{ steps.a.stdout | trim }} and {{ steps.s.stdout | trim }}
  - id: d
    title: Only when a succeeded
    when: steps.a.exit_code == 0
    run: echo d ran
"""
SECRET = "variables:\n  password: {type: string, secret: true}\n"


def test_a_resume_gives_later_steps_what_finished_steps_printed_and_returned(lab: Lab) -> None:
    path = book(lab, OUTPUTS, SECRET)
    env = {"RUNBOOK_VAR_PASSWORD": "hunter2-secret"}
    first = lab.run_here(path, env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    (lab.root / "fixed").touch()
    resumed = lab.run_here(path, "--resume", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "c got token-1234 and ********" in resumed.stdout  # was: "c got and"''
    assert "d ran" in resumed.stdout  # was: skipped, `steps.a.exit_code` read as None
    assert ("d", "local", "ok") in summary_rows(resumed.stdout)
    assert "hunter2" not in journal_path(lab.state).read_text()


LOOP = """\
  - id: rotate
    title: Rotate
    loop: services
    run: |
      echo {{ item }} >> ran
      test {{ item }} != b || test -f fixed
      test {{ item }} != c || test -f fixed-c
"""
SERVICES = "variables:\n  services: {type: array}\n"


def test_a_resume_with_other_loop_items_is_refused_unless_forced_then_matched_by_value(lab: Lab) -> None:
    path = book(lab, LOOP, SERVICES)
    first = lab.run_here(path, "--var", "services=[a, b, c]")
    assert first.returncode == 1, first.stdout + first.stderr
    assert (lab.root / "ran").read_text().split() == ["a", "b"]
    (lab.root / "fixed").touch()

    refused = lab.run_here(path, "--resume", "--var", "services=[z, a, b, c]")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the loop items changed since run" in refused.stderr and 'rotate: new "z"' in refused.stderr
    assert (lab.root / "ran").read_text().split() == ["a", "b"]  # nothing ran

    forced = lab.run_here(path, "--resume", "--force", "--var", "services=[z, a, b, c]")
    assert forced.returncode == 1, forced.stdout + forced.stderr  # c fails now
    # by position, `z` was taken for the finished `a` and never ran, and `a` ran a second time
    assert (lab.root / "ran").read_text().split() == ["a", "b", "z", "b", "c"]
    assert 'loop items changed (--force, matched by value): rotate: new "z"' in forced.stdout
    assert summary_rows(forced.stdout) == [
        ("rotate[1]", "local", "ok"),
        ("rotate[2]", "local", "done before"),  # the summary says statuses in words (issue 23)
        ("rotate[3]", "local", "ok"),
        ("rotate[4]", "local", "failed"),
    ]

    (lab.root / "fixed-c").touch()  # the new list is the run's now: resumed again without --force
    again = lab.run_here(path, "--resume", "--var", "services=[z, a, b, c]")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (lab.root / "ran").read_text().split() == ["a", "b", "z", "b", "c", "c"]
    assert [row[2] for row in summary_rows(again.stdout)] == ["done before"] * 3 + ["ok"]


RETRIES = """\
  - id: flaky
    title: Fails, and hangs on its second attempt
    retries: {count: 3, delay: 0s}
    run: |
      echo attempt >> count
      if [ "$(wc -l < count)" -eq 2 ]; then touch hanging; sleep 3600; fi
      exit 1
"""


def test_a_resume_continues_the_attempts_instead_of_starting_them_again(lab: Lab) -> None:
    """4 attempts in all (retries: 3): the second is cut by Ctrl-C, so the resume makes it again and then
    the third and fourth, not four more."""
    path = book(lab, RETRIES)
    running = lab.start(path)
    try:
        wait_for(lambda: (lab.root / "hanging").exists(), "the second attempt to start", timeout=20)
    finally:
        code, out, err = running.stop(signal.SIGINT)
    assert code == 130, out + err
    resumed = lab.run_here(path, "--resume", "--rerun-unknown")
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert (lab.root / "count").read_text().split() == ["attempt"] * 5  # 1, 2 (cut), 2 again, 3, 4
    ends = [r for r in journal(lab.state) if r["type"] == "step-end"]
    assert [(r["attempt"], r["status"]) for r in ends] == [
        (1, "failed"),
        (2, "interrupted"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
    ]
    assert ends[-1]["reason"] is None  # the count is the record's `attempt` (issue 23: said once)
