"""Hosts that may be down (issue 23): a run reaches only the hosts it has something to do on."""

from __future__ import annotations

import pytest

from runbooks import Lab, summary_rows, write_runbook

BOOK = """\
runbook: 1
name: failover
version: "1"
title: Fail over
variables:
  old_primary_alive: {{type: boolean, default: false}}
targets:
  old-primary:
    ssh: {{hosts: ["nobody@127.0.0.1:1"]}}
steps:
  - id: fence
    title: Stop the old primary, if it still answers
    on: old-primary
    when: old_primary_alive
    run: systemctl stop postgresql
  - id: promote
    title: Promote the replica
    run: touch promoted
"""


@pytest.mark.parametrize("flags", [[], ["--from", "promote"], ["--only", "promote"]])
def test_a_host_with_nothing_to_do_is_not_reached(lab: Lab, flags: list[str]) -> None:
    path = write_runbook(lab.root.parent, BOOK.format())
    done = lab.run_here(path, *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "connecting to" not in done.stdout and (lab.root / "promoted").exists()


def test_a_host_with_a_step_to_run_is_reached_and_its_failure_stops_everything(lab: Lab) -> None:
    path = write_runbook(lab.root.parent, BOOK.format())
    done = lab.run_here(path, "--var", "old_primary_alive=true")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot reach every host; nothing has run" in done.stdout + done.stderr
    assert not (lab.root / "promoted").exists()


def test_a_target_whose_hosts_may_be_unreachable_skips_their_steps_with_the_reason(lab: Lab) -> None:
    text = BOOK.format().replace(
        '    ssh: {hosts: ["nobody@127.0.0.1:1"]}\n',
        '    ssh: {hosts: ["nobody@127.0.0.1:1"]}\n    may_be_unreachable: true\n',
    )
    text = text.replace(
        "steps:\n",
        "checks:\n  - title: Old primary is not serving\n    on: old-primary\n    run: 'false'\nsteps:\n",
    )
    path = write_runbook(lab.root.parent, text)
    done = lab.run_here(path, "--var", "old_primary_alive=true")
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert "127.0.0.1: skipped, unreachable at preflight (" in said  # its check
    assert ("fence", "127.0.0.1", "skipped") in summary_rows(done.stdout)
    assert "its target may be unreachable" in said and (lab.root / "promoted").exists()
