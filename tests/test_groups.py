"""Groups of steps (`steps:`) on this machine: loops of groups, `when` on a group and on a manual step (issue
23, bug 2), `max_failed_hosts` over a group's items, numbering in the plan and the checklist, validation.

Each test runs the command line in this process (`Lab.run_here`) in a temporary directory; the steps append
to a file, so the order they ran in is what the file holds. The rolling groups over SSH hosts are
tests/test_groups_ssh.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import grouping
from engine.model import Step
from engine.targets import Host
from runbooks import Lab, fold, journal, run_dirs, summary_rows, work_lab, write_runbook


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    return work_lab(tmp_path, home, ())


def book(lab: Lab, steps: str, extra: str = "") -> Path:
    text = f'runbook: 1\nname: groups\nversion: "1.0"\ntitle: Groups\n{extra}steps:\n{steps}'
    return write_runbook(lab.root, text)


def ran(lab: Lab) -> list[str]:
    log = lab.root / "ran.log"
    return log.read_text().split() if log.exists() else []


LOOP_OF_GROUPS = """\
  - id: first
    title: First
    run: echo first >> ran.log
  - id: certs
    title: Renew each certificate
    loop: [web, db, mail]
    loop_var: cert
{extra}    steps:
      - id: renew
        title: Renew
        run: test {{ cert }} != {bad} && echo renew-{{ cert }} >> ran.log
      - id: reload
        title: Reload
        run: echo reload-{{ cert }}-after-{{ steps.renew.exit_code }} >> ran.log
  - id: last
    title: Last
    run: echo last >> ran.log
"""


def loop_of_groups(extra: str = "", bad: str = "none") -> str:
    return LOOP_OF_GROUPS.replace("{extra}", extra).replace("{bad}", bad)


def test_each_item_of_a_loop_runs_the_whole_group_in_order(lab: Lab) -> None:
    done = lab.run_here(book(lab, loop_of_groups()), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(lab) == [
        "first",
        "renew-web",
        "reload-web-after-0",
        "renew-db",
        "reload-db-after-0",
        "renew-mail",
        "reload-mail-after-0",
        "last",
    ]
    state = fold(journal(lab.state))
    assert state[("certs[2]/reload", "local")] == "ok"


def test_a_failed_item_stops_the_run_there_and_a_resume_continues_at_it(lab: Lab) -> None:
    path = book(lab, loop_of_groups(bad="db"))
    done = lab.run_here(path, "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ran(lab) == ["first", "renew-web", "reload-web-after-0"]
    assert "run failed: certs[2]/renew@local" in done.stdout
    path.write_text(loop_of_groups(bad="none").join(path.read_text().split(loop_of_groups(bad="db"))))
    resumed = lab.run_here(path, "--yes", "--resume", "--force")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ran(lab)[3:] == ["renew-db", "reload-db-after-0", "renew-mail", "reload-mail-after-0", "last"]


def test_max_failed_hosts_of_a_loop_group_leaves_out_the_rest_of_the_failed_item(lab: Lab) -> None:
    done = lab.run_here(book(lab, loop_of_groups("    max_failed_hosts: 1\n", bad="db")), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr  # a tolerated failure still fails the run
    assert ran(lab) == [
        "first",
        "renew-web",
        "reload-web-after-0",
        "renew-mail",
        "reload-mail-after-0",
        "last",
    ]
    assert ("certs[2]/reload", "local", "skipped") in summary_rows(done.stdout)
    assert "within its max_failed_hosts=1" in done.stdout


def test_a_second_failed_item_is_more_than_the_group_allows(lab: Lab) -> None:
    text = loop_of_groups("    max_failed_hosts: 1\n").replace("!= none", "= web")
    done = lab.run_here(book(lab, text), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ran(lab) == ["first", "renew-web", "reload-web-after-0"]  # db, then mail failed: no `last`
    assert "run failed: certs[2]/renew@local, certs[3]/renew@local" in done.stdout


GUARDED = """\
  - id: probe
    title: Probe
    run: echo {answer}
  - id: maybe
    title: Only when the probe says yes
    when: steps.probe.stdout.strip() == 'yes'
    steps:
      - id: act
        title: Act
        run: echo act >> ran.log
      - id: look
        title: Look
        manual: Look at the dashboard.
  - id: by-hand
    title: A manual step with a false when
    when: "{flag}"
    manual: Do something by hand.
  - id: end
    title: End
    run: echo end >> ran.log
"""


def test_a_group_when_over_an_earlier_step_decides_at_run_time(lab: Lab) -> None:
    done = lab.run_here(book(lab, GUARDED.format(answer="no", flag="false")), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr  # no manual step was asked (stdin is empty)
    assert ran(lab) == ["end"]
    rows = summary_rows(done.stdout)
    assert ("maybe/act", "local", "skipped") in rows and ("maybe/look", "operator", "skipped") in rows
    assert ("by-hand", "operator", "skipped") in rows
    assert fold(journal(lab.state))[("by-hand", "operator")] == "skipped"


def test_a_group_when_true_runs_it(lab: Lab) -> None:
    text = GUARDED.format(answer="yes", flag="false")
    done = lab.run_here(book(lab, text), "--yes", "--confirm-manual")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(lab) == ["act", "end"]


def test_a_manual_steps_false_when_shows_in_plan_and_checklist(lab: Lab) -> None:
    """Issue 23, bug 2: `when:` on a manual step was ignored by run, plan and checklist."""
    path = book(lab, GUARDED.format(answer="no", flag="1 == 2"))
    plan = lab.run_here(path, task="plan")
    assert plan.returncode == 0, plan.stderr
    assert "skipped — when: 1 == 2 is false" in plan.stdout
    checklist = lab.run_here(path, task="checklist")
    assert checklist.returncode == 0, checklist.stderr
    assert "when: 1 == 2 is false" in checklist.stdout


def test_plan_and_checklist_number_a_groups_steps(lab: Lab) -> None:
    path = book(lab, loop_of_groups())
    plan = lab.run_here(path, task="plan")
    assert plan.returncode == 0, plan.stderr
    assert "2.1. certs[1]/renew: Renew (cert 1/3: web)" in plan.stdout
    assert "2.2. certs[3]/reload: Reload (cert 3/3: mail)" in plan.stdout
    assert "  3. last: Last" in plan.stdout
    assert "  2. certs: Renew each certificate (cert 2/3: db)  [a group of 2 steps]" in plan.stdout
    checklist = lab.run_here(path, task="checklist")
    assert checklist.returncode == 0, checklist.stderr
    assert "### 2.2. Reload (cert 2/3: db)" in checklist.stdout
    assert "**2. certs: Renew each certificate (cert 3/3: mail)  [a group of 2 steps]**" in checklist.stdout


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (
            "    steps:\n      - id: inner\n        title: I\n        steps: [{id: x, title: X, run: 'true'}]\n",
            "steps[0].steps[0].steps: steps is not allowed in a group",
        ),
        (
            "    run: 'true'\n    steps: [{id: x, title: X, run: 'true'}]\n",
            "steps[0].run: 'run' is not allowed",
        ),
        ("    on: local\n    serial: 1\n    steps: [{id: x, title: X, run: 'true'}]\n", "serial needs on"),
        ("    serial: 1\n    steps: [{id: x, title: X, run: 'true'}]\n", "'on' is needed with 'serial'"),
        ("    steps: [{id: g, title: X, run: 'true'}]\n", "duplicate step id 'g'"),
    ],
)
def test_validate_refuses_groups_it_cannot_run(lab: Lab, group: str, message: str) -> None:
    done = lab.run_here(book(lab, f"  - id: g\n    title: G\n{group}"), task="validate")
    assert done.returncode == 2, done.stdout
    assert message in done.stdout + done.stderr


USED = """\
runbook: 1
name: backup
version: "1.0"
title: Back up one database
variables:
  db: {type: string, required: true}
steps:
  - id: dump
    title: Dump
    run: echo dump-{{ db }} >> ran.log
  - id: check
    title: Check by hand
    manual: Check the dump of {{ db }}.
"""

USING = """\
  - id: backup
    title: Back up each database
    use: backup.yml
    loop: [users, orders]
    loop_var: name
    with:
      db: "{{ name }}"
  - id: extra
    title: Back up the archive too
    use: backup.yml
    when: archive
    with:
      db: archive
  - id: done
    title: Done
    run: echo done >> ran.log
"""


def test_use_with_loop_uses_the_runbook_once_per_item_and_when_skips_it(lab: Lab) -> None:
    (lab.root / "backup.yml").write_text(USED)
    path = book(lab, USING, "variables:\n  archive: {type: boolean, default: false}\n")
    done = lab.run_here(path, "--yes", "--confirm-manual")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(lab) == ["dump-users", "dump-orders", "done"]
    rows = summary_rows(done.stdout)
    assert ("backup[2]/dump", "local", "ok") in rows
    assert ("extra/dump", "local", "skipped") in rows and ("extra/check", "operator", "skipped") in rows
    plan = lab.run_here(path, task="plan")
    assert "1. backup[1]/dump: Dump" in plan.stdout and "skipped — when: archive is false" in plan.stdout
    again = lab.run_here(path, "--yes", "--confirm-manual", "--var", "archive=true")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ran(lab)[3:] == ["dump-users", "dump-orders", "dump-archive", "done"]


def test_a_use_steps_when_over_an_earlier_steps_output_is_refused(lab: Lab) -> None:
    (lab.root / "backup.yml").write_text(USED)
    steps = USING.replace("when: archive", "when: steps.backup.stdout == 'x'")
    done = lab.run_here(book(lab, steps, "variables:\n  archive: {type: boolean, default: false}\n"), "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "a use step's when is decided when the plan is made" in done.stderr


def test_export_refuses_a_groups_max_failed_hosts_by_name(lab: Lab) -> None:
    path = book(lab, loop_of_groups("    max_failed_hosts: 1\n"))
    done = lab.run_here("ansible", path, "-o", lab.root / "out", task="export")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "steps[1].max_failed_hosts: 'max_failed_hosts' has no Ansible equivalent" in done.stderr


def test_export_says_a_manual_steps_false_when_instead_of_asking(lab: Lab) -> None:
    """Issue 23, bug 2, in the export: the manual step is not a prompt in the playbook."""
    manual = "  - id: by-hand\n    title: By hand\n    when: 1 == 2\n    manual: Do something by hand.\n"
    path = book(lab, manual + "  - id: end\n    title: End\n    run: echo end\n")
    done = lab.run_here("ansible", path, "-o", lab.root / "out", task="export")
    assert done.returncode == 0, done.stdout + done.stderr
    playbook = (lab.root / "out" / "playbook.yml").read_text()
    assert "Do something by hand" not in playbook and "when: 1 == 2 is false" in playbook


def test_the_filled_checklist_and_its_timeline_know_a_groups_units(lab: Lab) -> None:
    path = book(lab, loop_of_groups("    max_failed_hosts: 1\n", bad="db"))
    assert lab.run_here(path, "--yes").returncode == 1
    [run] = run_dirs(lab.state)
    done = lab.run_here(path, "--journal", run.name, "--format", "html", task="checklist")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert "certs[2]/renew · local" in page and "certs[3]/reload · local" in page  # bars of the timeline
    assert '<span class="num">2.2</span>' in page
    markdown = lab.run_here(path, "--journal", run.name, task="checklist").stdout
    assert "### 2.1. Renew (cert 2/3: db)" in markdown


def test_a_later_step_reads_one_run_of_a_group_or_its_latest(lab: Lab) -> None:
    after = (
        "  - id: after\n    title: After\n"
        "    run: echo {{ steps.reload.stdout | trim }} {{ steps['certs[1]/renew'].exit_code }} >> ran.log\n"
    )
    path = book(lab, loop_of_groups() + after)
    done = lab.run_here(path, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(lab)[-2:] == ["last", "0"]  # `reload` printed nothing (its echo went to the file)
    wrong = book(lab, loop_of_groups() + after.replace("certs[1]/renew", "certs[1]/nope"))
    refused = lab.run_here(wrong, task="validate")
    assert (
        refused.returncode == 2
        and "no earlier step has id 'certs[1]/nope'" in refused.stdout + refused.stderr
    )


@pytest.mark.parametrize(
    ("serial", "hosts", "sizes"),
    [(1, 3, [1, 1, 1]), (2, 3, [2, 1]), ("25%", 10, [3, 3, 3, 1]), ("50%", 3, [2, 1]), (None, 4, [4])],
)
def test_serial_cuts_a_targets_hosts_into_batches(
    serial: int | str | None, hosts: int, sizes: list[int]
) -> None:
    group = Step(index=0, id="g", title="G", on="web", serial=serial, group_on=True)
    found = grouping.batches(group, tuple(Host(f"h{n}", f"h{n}") for n in range(hosts)))
    assert [len(b.hosts) for b in found if b is not None] == sizes
    assert next(b.label for b in found if b is not None) == "+".join(f"h{n}" for n in range(sizes[0]))


def test_only_and_from_name_a_group_or_one_of_its_runs(lab: Lab) -> None:
    path = book(lab, loop_of_groups())
    done = lab.run_here(path, "--yes", "--only", "certs[2]")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ran(lab) == ["renew-db", "reload-db-after-0"]
    again = lab.run_here(path, "--yes", "--from", "certs[3]")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ran(lab)[2:] == ["renew-mail", "reload-mail-after-0", "last"]


def test_a_groups_when_known_at_plan_time_shows_on_each_of_its_steps(lab: Lab) -> None:
    text = "  - id: g\n    title: G\n    when: 1 == 2\n    steps:\n      - {id: a, title: A, run: echo a >> ran.log}\n"
    path = book(lab, text)
    plan = lab.run_here(path, task="plan")
    assert "1.1. g/a: A  [on this machine, only when 1 == 2]" in plan.stdout
    assert "skipped — when: 1 == 2 is false" in plan.stdout
    done = lab.run_here(path, "--yes")
    assert done.returncode == 0 and ran(lab) == []


def test_a_rehearsal_of_a_group_failing_in_its_second_item_never_reaches_the_third(lab: Lab) -> None:
    path = book(lab, loop_of_groups())
    done = lab.run_here(path, "--auto", "--fail", "certs[2]/renew", task="rehearse")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "steps never reached: certs[2]/reload, certs[3]/renew, certs[3]/reload, last" in done.stdout
    assert "### 2.2. certs[3]/reload: Reload (cert 3/3: mail)" in done.stdout
    assert ran(lab) == []  # a rehearsal runs nothing
