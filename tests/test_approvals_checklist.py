"""Four eyes on paper and on record: the checklist's signature lines, `--break-glass` (a reason required,
said in red, journaled, on the filled checklist and the run's timeline), and the document an approval covers
(engine/approvals/document.py) changing with what would run."""

from __future__ import annotations

import json
from pathlib import Path

from engine.approvals import document
from engine.options import Options, prepare
from runbooks import Lab, journal

BOOK = """\
runbook: 1
name: fe
version: "1"
title: Four eyes
variables:
  approvals: {type: integer, default: 2}
  target: {type: string, default: prod}
steps:
  - id: restore
    title: Restore
    run: touch MARKS/restored-{{ target }}
    env: {MODE: "{{ target }}"}
    timeout: 5m
    approval: {required: "{{ approvals }}", from: [dba]}
"""


def lab(tmp_path: Path) -> Lab:
    found = Lab(tmp_path / "ws", tmp_path / "ws-home")
    found.root.mkdir()
    found.home.mkdir()
    found.write(BOOK.replace("MARKS", str(tmp_path)))
    return found


def test_the_blank_checklist_has_a_signature_line_per_required_approver(tmp_path: Path) -> None:
    here = lab(tmp_path)
    done = here.run_here(here.book, task="checklist")
    assert done.returncode == 0, done.stderr
    assert "**Four eyes:** needs 2 approval(s) by other operators (members of dba)" in done.stdout
    lines = [line for line in done.stdout.splitlines() if line.startswith("- ✍ Approved by ________")]
    assert len(lines) == 2


def test_break_glass_needs_a_reason_and_is_on_record_everywhere(tmp_path: Path) -> None:
    here = lab(tmp_path)
    refused = here.run_here(here.book, "--yes", "--break-glass", " ")
    assert refused.returncode == 2 and "--break-glass needs a reason" in refused.stderr
    assert not (tmp_path / "restored-prod").exists() and not here.state.exists()
    done = here.run(here.book, "--yes", "--break-glass", "etcd is down and nobody answers")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BREAK GLASS: " in done.stdout and "approves alone: etcd is down and nobody answers" in done.stdout
    [glass] = [r for r in journal(here.state) if r["type"] == "approval"]
    assert glass["verdict"] == "break-glass" and glass["comment"] == "etcd is down and nobody answers"
    run_id = next(r["run_id"] for r in journal(here.state) if r["type"] == "run")
    filled = here.run_here(here.book, "--journal", run_id, task="checklist")
    assert (
        "- ✔ **BREAK GLASS: " in filled.stdout and "reason: etcd is down and nobody answers" in filled.stdout
    )
    page = here.run_here(run_id, "--format", "html", task="runs")
    assert '<li class="glass">' in page.stdout and "etcd is down and nobody answers" in page.stdout


def _document(here: Lab, *values: str) -> document.Approved:
    plan = prepare(Options(str(here.book), var=values, environ={}))[1]
    return document.document("r1", plan.steps[0], "rb-sha", "plan-sha", lambda text: text)


def test_the_document_is_what_would_run_and_changes_with_it(tmp_path: Path) -> None:
    here = lab(tmp_path)
    prod, staging = _document(here), _document(here, "target=staging")
    data = json.loads(prod.text)
    [host] = data["hosts"]
    assert host["commands"] == {"*": f"touch {tmp_path}/restored-prod"} and host["env"] == ["MODE"]
    assert (host["timeout"], data["run_id"], data["step"], data["plan_sha256"]) == (
        300.0,
        "r1",
        "restore",
        "plan-sha",
    )
    assert prod.sha256 == document.sha256(prod.text) and prod == _document(here)  # canonical: same bytes
    assert staging.sha256 != prod.sha256


def test_approve_shows_how_the_step_differs_from_a_reviewed_plan(tmp_path: Path) -> None:
    from engine import reviewing
    from engine.approvals.desk import Request
    from engine.approvals.reviewed import difference

    here = lab(tmp_path)
    saved = tmp_path / "reviewed.json"
    reviewing.save(prepare(Options(str(here.book), environ={}))[1], saved)

    def request(approved: document.Approved) -> Request:
        return Request(
            run_id="r1",
            step="restore",
            runbook="fe",
            sha256=approved.sha256,
            document=approved.text,
            required=1,
        )

    assert "the step is as reviewed" in difference(request(_document(here)), saved)
    changed = difference(request(_document(here, "target=staging")), saved)
    assert changed.startswith("differs from the reviewed plan:")
    lines = changed.splitlines()
    assert any(line.startswith("-") and line.endswith(f'"touch {tmp_path}/restored-prod"') for line in lines)
    assert any(
        line.startswith("+") and line.endswith(f'"touch {tmp_path}/restored-staging"') for line in lines
    )
