"""Checks on a resume (issue 23): every check runs again, except one that holds only before the first step
(`only_before_start`, a failover's "the candidate is still a replica"), which a resume of a run that started
steps skips, and says so."""

from __future__ import annotations

from runbooks import Lab, write_runbook

BOOK = """\
runbook: 1
name: failover
version: "1"
title: Promote the replica
checks:
  - title: The candidate is still a replica
    run: test ! -e promoted
{flag}  - title: The tools are here
    run: touch tools-checked
steps:
  - id: promote
    title: Promote
    run: touch promoted
  - id: repoint
    title: Repoint the clients
    run: test -e fixed
"""


def test_a_check_that_holds_only_before_the_first_step_is_skipped_by_a_resume(lab: Lab) -> None:
    path = write_runbook(lab.root.parent, BOOK.format(flag="    only_before_start: true\n"))
    plan = lab.run_here(path, task="plan")
    assert "The candidate is still a replica  [on local, only before the first step]" in plan.stdout
    first = lab.run_here(path)
    assert first.returncode == 1 and (lab.root / "promoted").exists()
    (lab.root / "fixed").touch()
    (lab.root / "tools-checked").unlink()
    resumed = lab.run_here(path, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    said = " ".join(resumed.stdout.split())
    assert "check: The candidate is still a replica — skipped: it holds only before the first step" in said
    assert (lab.root / "tools-checked").exists()  # every other check runs again


def test_without_it_every_check_runs_again_on_a_resume(lab: Lab) -> None:
    path = write_runbook(lab.root.parent, BOOK.format(flag=""))
    assert lab.run_here(path).returncode == 1
    (lab.root / "fixed").touch()
    resumed = lab.run_here(path, "--resume")
    assert resumed.returncode == 3  # the state the check wants is gone once the promotion ran
    assert "The candidate is still a replica" in resumed.stdout + resumed.stderr


def test_a_resume_of_a_run_that_started_no_step_runs_it(lab: Lab) -> None:
    path = write_runbook(lab.root.parent, BOOK.format(flag="    only_before_start: true\n"))
    (lab.root / "promoted").touch()  # not a replica: refused before anything runs
    assert lab.run_here(path).returncode == 3
    again = lab.run_here(path, "--resume")
    assert again.returncode == 3 and "skipped" not in again.stdout
