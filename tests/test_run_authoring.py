"""What a runbook writer reaches for, through the CLI: texts rendered when the operator reads them, `run_once`,
`until`, `rules`, `loop` and `use` — each through the command line in this process (`Lab.run_here`) in a
temporary directory (no sshd needed; the multi-host cases use `--hosts` on local stand-ins or
`--target NAME=local`).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from pathlib import Path

import pytest
from sshd import SSHDNode

from engine.outcomes import Status
from runbooks import (
    ROOT,
    Lab,
    Nodes,
    Record,
    journal,
    nodes_runbook,
    operator_lab,
    summary_rows,
    write_rollback,
    write_runbook,
)


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    path = tmp_path / "work"
    path.mkdir()
    return Lab(path, home)


def book(lab: Lab, steps: str, extra: str = "", name: str = "book.yml") -> Path:
    text = f'runbook: 1\nname: authoring\nversion: "1.0"\ntitle: Authoring acceptance runbook\n{extra}steps:\n{steps}'
    return write_runbook(lab.root, text, name)


def records(lab: Lab, kind: str) -> list[Record]:
    return [r for r in journal(lab.state) if r["type"] == kind]


# -- 1. texts the operator reads are rendered with what is known then ---------------------------------------

TEXTS = """\
  - id: find-container
    title: Find the Rancher container
    run: echo rancher-7f3a
  - id: stop
    title: Stop it
    confirm: "Stop the Rancher container {{ steps['find-container'].stdout | trim }}?"
    run: echo stopped {{ steps['find-container'].stdout | trim }}
    result: "Container {{ steps['find-container'].stdout | trim }} is {{ steps.stop.stdout | trim }}."
  - id: look
    title: Look at it
    manual: "Check that {{ steps['find-container'].stdout | trim }} is gone from docker ps."
    record:
      prompt: "State of {{ steps['find-container'].stdout | trim }}"
      expect: "gone"
"""


def test_manual_texts_confirm_questions_and_results_show_the_run_time_value(lab: Lab) -> None:
    done = lab.run_here(book(lab, TEXTS), stdin="y\ngone\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Stop the Rancher container rancher-7f3a? [y/N]" in done.stdout
    assert "result: Container rancher-7f3a is stopped rancher-7f3a." in done.stdout
    assert "Check that rancher-7f3a is gone from docker ps." in done.stdout
    assert "State of rancher-7f3a:" in done.stdout
    assert "known at run time" not in done.stdout and "{{" not in done.stdout
    [confirmation] = records(lab, "confirmation")
    assert confirmation["question"] == "Stop the Rancher container rancher-7f3a?"
    [manual] = records(lab, "manual")
    assert manual["prompt"] == "State of rancher-7f3a" and manual["ok"] is True


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("confirm", "Stop {{ steps.find_container.stdout }}?"),
        ("result", "Now {{ stepz.a.stdout }}"),
        ("manual", "Look at {{ nope }}"),
    ],
)
def test_validate_checks_every_text_the_operator_reads(lab: Lab, key: str, text: str) -> None:
    steps = "  - id: a\n    title: A\n    run: 'true'\n  - id: b\n    title: B\n    run: 'true'\n"
    steps += f'    {key}: "{text}"\n'
    if key == "manual":
        steps = steps.replace("    run: 'true'\n    manual", "    manual")
    done = lab.run_here(book(lab, steps), task="validate")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(rf"book\.yml:1[12]:\d+: steps\[1\]\.{key}: ", done.stderr), done.stderr


def test_record_prompt_is_checked_by_validate(lab: Lab) -> None:
    steps = "  - id: a\n    title: A\n    manual: Do it.\n    record: {prompt: 'Seen {{ versoin }}'}\n"
    done = lab.run_here(book(lab, steps, "variables:\n  version: {default: v1}\n"), task="validate")
    assert done.returncode == 2
    assert "steps[0].record.prompt: undefined name 'versoin'; did you mean 'version'?" in done.stderr


# -- 2. run_once ------------------------------------------------------------------------------------------

ONCE = """\
  - id: bucket
    title: Create the bucket
    on: nodes
    run_once: true
    when: host.address != {first!r}
    run: kubectl create bucket
  - id: everywhere
    title: Restart docker
    on: nodes
    run: docker restart kubelet
"""


@pytest.mark.ssh
def test_run_once_runs_on_one_host_of_three_the_first_not_left_out(
    sshd_nodes: Nodes, tmp_path: Path, home: Path
) -> None:
    nodes: list[SSHDNode] = sshd_nodes(3)
    for node in nodes:
        node.stand_in("kubectl")
        node.stand_in("docker")
    lab = operator_lab(tmp_path / "work", home, nodes)
    path = lab.write(nodes_runbook("once", ONCE.format(first=nodes[0].address), nodes))
    plan = lab.run_here(path, task="plan")
    assert plan.returncode == 0, plan.stderr
    assert "[on nodes (3 hosts), once: on the first host not left out, only when host.address" in plan.stdout
    assert plan.stdout.count("$ kubectl create bucket") == 1
    done = lab.run_here(path)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = [n for n in nodes if n.calls("kubectl")]
    assert ran == [nodes[1]], "once, on the second node: the first is left out by its when"
    assert all(len(n.calls("docker")) == 1 for n in nodes)
    assert f"run_once: on {nodes[1].address} only" in done.stdout
    rows = [r for r in summary_rows(done.stdout) if r[0] == "bucket"]
    assert [r[2] for r in rows] == ["ok"], rows
    checklist = lab.run_here(path, task="checklist")
    assert checklist.returncode == 0, checklist.stderr
    section = checklist.stdout.split("Create the bucket")[1].split("###")[0]
    assert section.count("- [ ]") == 1 and "once: on the first host not left out" in section


# -- 3. until, deadline -------------------------------------------------------------------------------------

# A service that answers "starting" twice, then "ok" (counted in a file beside it), as JSON.
SERVICE = """\
#!/bin/sh
count=$(cat "$0.count" 2>/dev/null || echo 0); count=$((count + 1)); echo $count > "$0.count"
if [ $count -le {starting} ]; then echo '{{"status": "starting"}}'
else echo '{{"status": "ok", "calls": '$count'}}'; fi
"""

UNTIL = """\
  - id: wait-healthy
    title: Wait until the service answers ok
    run: health
    until: (result.stdout | from_json).status == 'ok'
    retries: {{count: {count}, delay: 0.4s}}
    deadline: {deadline}
"""


def service(lab: Lab, starting: int) -> None:
    lab.bin_dir.mkdir(parents=True, exist_ok=True)
    path = lab.bin_dir / "health"
    path.write_text(SERVICE.format(starting=starting))
    path.chmod(0o755)


def test_until_waits_until_the_stand_in_answers_and_the_summary_shows_the_whole_wait(lab: Lab) -> None:
    service(lab, starting=2)
    path = book(lab, UNTIL.format(count=10, deadline="1m"))
    plan = lab.run_here(path, task="plan")
    facts = "until (result.stdout | from_json).status == 'ok', retries 10, every 0.4 s, deadline 1 min"
    assert facts in plan.stdout
    done = lab.run_here(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("until (result.stdout | from_json).status == 'ok' is false") == 2
    ends = records(lab, "step-end")
    assert [e["attempt"] for e in ends] == [1, 2, 3] and ends[-1]["status"] == "ok"
    assert ends[-1]["duration"] >= 0.8  # two delays of 0.4 s at least: the whole wait, not the last attempt
    [row] = [line for line in done.stdout.splitlines() if line.startswith("│ wait-healthy")]
    seconds = float(row.split("│")[5].strip().split("s,")[0])
    assert seconds >= 0.8 and "3 attempts" in row, row
    checklist = lab.run_here(path, task="checklist")
    assert "until (result.stdout | from_json).status == 'ok'" in checklist.stdout
    assert "retries 10, every 0.4 s" in checklist.stdout and "deadline 1 min" in checklist.stdout


def test_a_deadline_stops_the_wait_before_the_retries_run_out(lab: Lab) -> None:
    service(lab, starting=1000)
    done = lab.run_here(book(lab, UNTIL.format(count=1000, deadline="1s")))
    assert done.returncode == 1, done.stdout + done.stderr
    ends = records(lab, "step-end")
    assert 1 <= len(ends) < 1000, ends  # the deadline ended it, not the 1000 retries
    assert ends[-1]["reason"].endswith("deadline 1s reached")  # the count: the attempt field
    assert "wait-healthy@local" in done.stdout


def test_until_over_output_that_is_not_json_is_not_yet_then_fails_with_why(lab: Lab) -> None:
    steps = "  - id: w\n    title: W\n    run: echo '<html>'\n    until: (result.stdout | from_json).ok\n"
    done = lab.run_here(book(lab, steps + "    retries: 1\n"))
    assert done.returncode == 1
    [*_, last] = records(lab, "step-end")
    assert "from_json: not JSON" in last["reason"] and last["attempt"] == 2


# -- 4. rules -----------------------------------------------------------------------------------------------

RULES = """\
warnings: [This rotates certificates.]
variables:
  rotate_ca: {type: boolean, default: false}
  services: {type: array, default: []}
rules:
  - assert: not (rotate_ca and services)
    message: "rotate_ca rotates every certificate: do not name services ({{ services | join(', ') }}) with it"
"""
ROTATE = "  - id: rotate\n    title: Rotate\n    run: touch rotated\n"


@pytest.mark.parametrize("task", ["plan", "run", "checklist"])
def test_a_broken_rule_stops_with_its_message_before_anything_else(lab: Lab, task: str) -> None:
    path = book(lab, ROTATE, RULES)
    done = lab.run_here(path, "--var", "rotate_ca=true", "--var", 'services=["etcd", "kubelet"]', task=task)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "book.yml:10:13: rules[0].assert: rotate_ca rotates every certificate: do not name services "
        "(etcd, kubelet) with it"
    ) in done.stderr
    assert "WARNING" not in done.stdout and not lab.state.exists()  # no warnings shown, no lock, no journal
    assert not (lab.root / "rotated").exists()
    fine = lab.run_here(path, "--var", "rotate_ca=true", task=task, stdin="y\n")
    assert fine.returncode == 0, fine.stdout + fine.stderr


def test_rules_are_checked_by_validate(lab: Lab) -> None:
    broken = RULES.replace("not (rotate_ca and services)", "not (rotate_ca and service)")
    done = lab.run_here(book(lab, ROTATE, broken), task="validate")
    assert done.returncode == 2
    assert "rules[0].assert: undefined name 'service'; did you mean 'services'?" in done.stderr


# -- 5. loop ------------------------------------------------------------------------------------------------

LOOP_VARS = "variables:\n  services: {type: array, default: [etcd, kubelet, kube-proxy]}\n"
LOOP = """\
  - id: rotate
    title: Rotate the certificate
    loop: services
    loop_var: service
    run: rotate-cert {{ service }}
    result: "{{ service }} rotated"
  - id: after
    title: After
    run: touch after
"""
# Records each call; fails for a service while `<bin>/fail-<service>` exists.
ROTATE_CERT = """\
#!/bin/sh
echo "$1" >> "$(dirname "$0")/rotated.log"
if [ -e "$(dirname "$0")/fail-$1" ]; then echo "cannot rotate $1" >&2; exit 3; fi
echo "rotated $1"
"""


def rotate_cert(lab: Lab) -> Path:
    lab.bin_dir.mkdir(parents=True, exist_ok=True)
    path = lab.bin_dir / "rotate-cert"
    path.write_text(ROTATE_CERT)
    path.chmod(0o755)
    return lab.bin_dir / "rotated.log"


def test_a_loop_whose_second_item_fails_resumes_at_the_second_item(lab: Lab) -> None:
    log = rotate_cert(lab)
    (lab.bin_dir / "fail-kubelet").touch()
    path = book(lab, LOOP, LOOP_VARS)
    plan = lab.run_here(path, task="plan")
    assert plan.returncode == 0, plan.stderr
    for n, name in enumerate(["etcd", "kubelet", "kube-proxy"], start=1):
        assert f"rotate[{n}]: Rotate the certificate (service {n}/3: {name})" in plan.stdout
        assert f"$ rotate-cert {name}" in plan.stdout
    first = lab.run_here(path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert log.read_text().split() == ["etcd", "kubelet"]  # stopped at the failing item
    assert ("rotate[1]", "local", "ok") in summary_rows(first.stdout)
    assert ("rotate[2]", "local", "failed") in summary_rows(first.stdout)
    assert "result: etcd rotated" in first.stdout
    (lab.bin_dir / "fail-kubelet").unlink()
    resumed = lab.run_here(path, "--resume", "latest", stdin="")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert log.read_text().split() == ["etcd", "kubelet", "kubelet", "kube-proxy"]  # etcd not again
    rows = summary_rows(resumed.stdout)
    assert ("rotate[1]", "local", Status.DONE_BEFORE.label) in rows and ("rotate[3]", "local", "ok") in rows
    assert (lab.root / "after").exists()
    ends = {(r["step"], r["status"]) for r in records(lab, "step-end")}
    assert {("rotate[1]", "ok"), ("rotate[2]", "failed"), ("rotate[2]", "ok"), ("rotate[3]", "ok")} <= ends
    checklist = lab.run_here(path, task="checklist")
    assert checklist.stdout.count("Rotate the certificate (service ") == 3, checklist.stdout


# -- 6. use / with ------------------------------------------------------------------------------------------

ETCD_SNAPSHOT = ROOT / "runbooks" / "etcd-snapshot.yml"
UPGRADE = """\
runbook: 1
name: upgrade
version: "1.0"
title: Upgrade Rancher
warnings: [The upgrade restarts Rancher.]
variables:
  rke_dir: {{type: string, required: true}}
steps:
  - id: snapshot
    title: Take an etcd snapshot before the upgrade
    use: {use}
    with: {{name: "{name}", rke_dir: "{{{{ rke_dir }}}}"}}
  - id: upgrade
    title: Upgrade
    run: kubectl rollout restart deployment/cattle --note {{{{ steps['snapshot/save'].exit_code }}}}
"""


def upgrade_book(lab: Lab, name: str = "pre-upgrade-1") -> Path:
    use = os.path.relpath(ETCD_SNAPSHOT, lab.root)
    return lab.write(UPGRADE.format(use=use, name=name), "upgrade.yml")


def test_a_runbook_using_etcd_snapshot_plans_runs_and_prints_with_the_used_steps_in_place(lab: Lab) -> None:
    write_rollback(lab, "nodes: []\n")
    path = upgrade_book(lab)
    rke = ["--var", f"rke_dir={lab.rke_dir}"]
    plan = lab.run_here(path, *rke, task="plan")
    assert plan.returncode == 0, plan.stderr
    save = "./rke_linux-amd64 etcd snapshot-save --name pre-upgrade-1 --config rancher-cluster.yml"
    assert plan.stdout.index("snapshot/save: Save the etcd snapshot") < plan.stdout.index("upgrade: Upgrade")
    assert save in plan.stdout and "(snapshot) The RKE binary is in rke_dir and executable" in plan.stdout
    sha = hashlib.sha256(ETCD_SNAPSHOT.read_bytes()).hexdigest()
    assert f"sha256 {sha[:16]}" in plan.stdout
    done = lab.run_here(path, *rke, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [c["argv"] for c in lab.calls()]
    assert calls == [
        [
            "rke_linux-amd64",
            "etcd",
            "snapshot-save",
            "--name",
            "pre-upgrade-1",
            "--config",
            "rancher-cluster.yml",
        ],
        ["kubectl", "rollout", "restart", "deployment/cattle", "--note", "0"],
    ]
    assert ("snapshot/save", "local", "ok") in summary_rows(done.stdout)
    assert "result: Snapshot pre-upgrade-1 saved on each etcd node" in done.stdout
    [header] = records(lab, "run")
    assert header["uses"] == [{"step": "snapshot", "path": str(ETCD_SNAPSHOT), "sha256": sha}]
    printed = lab.run_here(path, *rke, task="checklist")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.index("`snapshot/save`") < printed.stdout.index("`upgrade`")
    assert save in printed.stdout and "The upgrade restarts Rancher." in printed.stdout


def test_with_values_are_checked_by_the_used_runbooks_schema(lab: Lab) -> None:
    write_rollback(lab, "nodes: []\n")
    done = lab.run_here(
        upgrade_book(lab, name="pre-upgrade.zip"), "--var", f"rke_dir={lab.rke_dir}", task="plan"
    )
    assert done.returncode == 2
    assert "upgrade.yml:12:" in done.stderr and "steps[0].with.name:" in done.stderr, done.stderr


def test_a_cycle_of_runbooks_is_refused_at_its_line(lab: Lab) -> None:
    step = "steps:\n  - id: other\n    title: Other\n    use: {}\n"
    head = 'runbook: 1\nname: {}\nversion: "1"\ntitle: T\n'
    lab.write(head.format("a") + step.format("b.yml"), "a.yml")
    lab.write(head.format("b") + step.format("a.yml"), "b.yml")
    done = lab.run_here(lab.root / "a.yml", task="validate")
    assert done.returncode == 2
    assert (
        "b.yml:8:10: steps[0].use: a cycle: " in done.stderr and "a.yml uses b.yml uses a.yml" in done.stderr
    )


# -- 7. the small ones --------------------------------------------------------------------------------------

HYPHEN = """\
  - id: find-container
    title: Find the Rancher container
    run: echo rancher-7f3a
  - id: stop
    title: Stop it
    run: docker stop {{ steps.find-container.stdout | trim }}
"""


def test_a_hyphenated_step_id_after_steps_dot_gets_the_bracket_hint(lab: Lab) -> None:
    done = lab.run_here(book(lab, HYPHEN), task="validate")
    assert done.returncode == 2
    assert (
        "book.yml:11:10: steps[1].run: steps.find-container.stdout: jinja reads '-' as a minus; "
        "write steps['find-container'].stdout for a step id with hyphens"
    ) in done.stderr
    assert "1 problem found" in done.stderr  # not also "undefined name 'container'"


def test_paper_gets_a_blank_naming_the_step_where_the_plan_gets_a_placeholder(lab: Lab) -> None:
    path = book(lab, HYPHEN.replace("steps.find-container.stdout | trim", "steps['find-container'].stdout"))
    printed = lab.run_here(path, task="checklist")
    assert printed.returncode == 0, printed.stderr
    assert (
        "docker stop ________ (from step 1)" in printed.stdout and "known at run time" not in printed.stdout
    )
    planned = lab.run_here(path, task="plan")
    assert "docker stop <steps['find-container'].stdout: known at run time>" in planned.stdout


def test_now_names_a_snapshot_with_todays_utc_date(lab: Lab) -> None:
    steps = "  - id: snap\n    title: Snapshot\n    run: echo snap-{{ now('%Y%m%d') }}\n"
    before = datetime.datetime.now(datetime.UTC)
    done = lab.run_here(book(lab, steps))
    after = datetime.datetime.now(datetime.UTC)
    assert done.returncode == 0, done.stderr
    days = {f"{moment:%Y%m%d}" for moment in (before, after)}
    assert any(f"local | snap-{day}" in done.stdout for day in days), done.stdout


INNER = """\
runbook: 1
name: inner
version: "1"
title: Inner
variables:
  label: {type: string, required: true}
steps:
  - id: first
    title: First
    run: touch {{ label }}-first
  - id: second
    title: Second
    run: test ! -e stop && touch {{ label }}-second
"""
OUTER = """\
  - id: sub
    title: Use the inner runbook
    use: inner.yml
    with: {label: x}
  - id: last
    title: Last
    run: touch last
"""


def test_resume_refuses_a_used_runbook_that_changed_and_only_selects_its_steps(lab: Lab) -> None:
    lab.write(INNER, "inner.yml")
    path = book(lab, OUTER)
    (lab.root / "stop").touch()
    first = lab.run_here(path)
    assert first.returncode == 1 and (lab.root / "x-first").exists()
    (lab.root / "stop").unlink()
    lab.write(INNER.replace("title: Second", "title: Second, changed"), "inner.yml")
    refused = lab.run_here(path, "--resume", "latest")
    assert refused.returncode == 2
    assert "the runbook(s) used by sub (" in refused.stderr and "changed since run" in refused.stderr
    forced = lab.run_here(path, "--resume", "latest", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    rows = summary_rows(forced.stdout)
    assert ("sub/first", "local", Status.DONE_BEFORE.label) in rows and ("sub/second", "local", "ok") in rows
    (lab.root / "x-first").unlink()
    only = lab.run_here(path, "--only", "sub")
    assert only.returncode == 0 and (lab.root / "x-first").exists()
    assert [r[0] for r in summary_rows(only.stdout)] == ["sub/first", "sub/second"]


def test_with_passes_typed_values(lab: Lab) -> None:
    """Issue 23: `"{{ min_free_gb }}"` passes the integer (one expression: its value as it is); other text is
    read as the used variable's type, as a value on the command line is."""
    inner = (
        "variables:\n  min_free_gb: {type: integer, required: true}\n  paths: {type: array, default: []}\n"
        "  margin: {type: number, default: 0}\n"
    )
    book(
        lab,
        "  - id: a\n    title: A\n    run: echo {{ min_free_gb + 1 }} {{ paths | length }} {{ margin * 2 }}\n",
        inner,
        "disk.yml",
    )
    outer = "variables:\n  min_free_gb: {type: integer, default: 5}\n  dirs: {type: array, default: [a, b]}\n"
    steps = (
        "  - id: disk\n    title: Disk\n    use: disk.yml\n"
        '    with: {min_free_gb: "{{ min_free_gb }}", paths: "{{ dirs }}", margin: "{{ min_free_gb }}.5"}\n'
    )
    done = lab.run_here(book(lab, steps, outer), task="plan")
    assert done.returncode == 0, done.stderr
    assert "$ echo 6 2 11.0" in done.stdout


def test_a_used_runbooks_defaults_are_its_own(lab: Lab) -> None:
    """Issue 23: a used runbook's steps take its own `defaults`; the using runbook's do not reach them."""
    book(
        lab,
        "  - id: a\n    title: A\n    run: echo a\n",
        "defaults: {timeout: 5s, retries: 2}\n",
        "inner.yml",
    )
    steps = "  - id: mine\n    title: Mine\n    run: echo mine\n  - id: u\n    title: U\n    use: inner.yml\n"
    done = lab.run_here(book(lab, steps, "defaults: {timeout: 1h}\n"), task="plan")
    assert done.returncode == 0, done.stderr
    assert "1. mine: Mine  [on this machine, timeout 1 h]" in done.stdout
    assert "2. u/a: A  [on u/local (this machine), timeout 5 s, retries 2]" in done.stdout
