"""Checklists (engine/checklist, engine/commands/checklist.py): Markdown parsed by a real CommonMark parser,
HTML checked for what a standalone print page must hold, and both filled from journals written in the
documented record format. The browser half (print to PDF, read it back) is tests/test_checklist_browser.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from engine.checklist import build, to_html, to_markdown
from engine.commands import checklist as command
from engine.commands.checklist import ChecklistOptions, Format
from engine.errors import UsageError
from engine.journal import Journal
from engine.options import Options, prepare
from engine.planning import Plan, sha256_text

REPO = Path(__file__).resolve().parent.parent
HA = REPO / "runbooks" / "ha-rollback.yml"
NODES = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
RUN_ID = "20261126T120000Z-c0ffee"
SECRET = "Sup3rS3cretValue-9f8e"
SECRET_RUNBOOK = """\
runbook: 1
name: secret-demo
version: "0.1"
title: Rotate the <b>API</b> token "now" </style>
warnings:
  - Breaks <i>clients</i> & sessions
variables:
  token: {type: string, secret: true, required: true, description: API token}
  region: {type: string, required: true}
steps:
  - id: push
    title: Push the token
    run: 'curl -sf -H "Authorization: Bearer {{ token | raw }}" https://api.example/{{ region }}'
  - id: rotate
    title: Rotate
    env: {TOKEN: "{{ token }}"}
    run: ./rotate --region {{ region }}
"""


@dataclass(frozen=True)
class TaskItem:
    section: str  # the h2 above it ("" before the first)
    heading: str  # the h3 above it, within the section
    checked: bool
    text: str


def task_items(markdown: str) -> list[TaskItem]:
    """Every GFM task list item, found in markdown-it-py's CommonMark token stream (list items whose first
    paragraph starts with `[ ] ` or `[x] `)."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    items, section, heading = [], "", ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            text = tokens[index + 1].content
            section, heading = (
                (text, "") if token.tag == "h2" else (section, text if token.tag == "h3" else heading)
            )
        elif token.type == "list_item_open" and tokens[index + 1].type == "paragraph_open":
            match = re.match(r"\[([ xX])\] (.*)", tokens[index + 2].content, re.DOTALL)
            if match:
                items.append(TaskItem(section, heading, match[1] != " ", match[2]))
    return items


def fences(markdown: str) -> list[str]:
    return [t.content.rstrip("\n") for t in MarkdownIt("commonmark").parse(markdown) if t.type == "fence"]


@pytest.fixture
def rke_dir(tmp_path: Path) -> Path:
    """An RKE directory with a 3-node cluster file, as the ha-rollback inventory reads it."""
    directory = tmp_path / "rke"
    directory.mkdir()
    nodes = "".join(
        f"  - address: {a}\n    user: rancher\n    role: [controlplane, etcd, worker]\n" for a in NODES
    )
    (directory / "rancher-cluster.yml").write_text(f"nodes:\n{nodes}", encoding="utf-8")
    return directory


def ha_options(rke_dir: Path, *assignments: str, platform: str | None = None) -> Options:
    return Options(str(HA), var=(f"rke_dir={rke_dir}", *assignments), platform=platform, environ={})


def filling(fmt: str, output: str | None, state: Path, run_id: str = RUN_ID) -> ChecklistOptions:
    """`checklist --format FMT -o OUTPUT --journal RUN_ID --state-dir STATE`."""
    return ChecklistOptions(format=Format(fmt), output=output, journal=run_id, state_dir=str(state))


def plan_of(options: Options) -> Plan:
    return prepare(options, any_platform=options.platform is None, allow_missing=True)[1]


def ha_markdown(rke_dir: Path, *assignments: str, platform: str | None = None) -> str:
    return to_markdown(build(plan_of(ha_options(rke_dir, *assignments, platform=platform))))


# -- the blank checklist ------------------------------------------------------------------------------


def test_one_task_item_per_step_and_host(rke_dir: Path) -> None:
    items = task_items(ha_markdown(rke_dir))
    steps = [i for i in items if i.section == "Steps"]
    per_step = Counter(i.heading for i in steps)
    assert per_step == {
        "1. Restore the etcd snapshot taken before the upgrade": 1,
        "2. Bring the cluster back up": 1,
        "3. Restart the Kubernetes components on every node": 3,
        "4. Roll the Rancher deployment back to the prior version": 1,
        "5. Wait for the rolled-back Rancher to be ready": 1,
        "6. Log into Rancher and confirm the version": 1,
    }
    fan_out = [i.text for i in steps if i.heading.startswith("3.")]
    assert [next(n for n in NODES if f"`{n}`" in text) for text in fan_out] == list(NODES)
    assert len([i for i in items if i.section == "Before you start"]) == 3  # the preflight checks
    assert not any(i.checked for i in items)


def test_every_command_of_the_plan_is_in_a_code_block(rke_dir: Path) -> None:
    plan = plan_of(ha_options(rke_dir, "snapshot=snap-1", "prior_version=v2.0.8"))
    blocks = fences(to_markdown(build(plan)))
    hosts = [h for c in plan.checks for h in c.hosts] + [h for s in plan.steps for h in s.hosts]
    commands = {v.script.rstrip("\n") for h in hosts for v in h.variants}
    assert len(commands) == 12  # the .rkestate check has a macOS and a Linux form
    assert commands <= set(blocks)
    assert (
        "kubectl --kubeconfig=kube_config_rancher-cluster.yml set image deployment/cattle "
        "cattle-server=rancher/rancher:v2.0.8 -n cattle-system"
    ) in blocks


def test_both_platform_variants_are_labelled_when_no_platform_is_chosen(rke_dir: Path) -> None:
    markdown = ha_markdown(rke_dir, "snapshot=snap-1")
    assert "macOS:\n\n```sh\n./rke_darwin-amd64 etcd snapshot-restore --name snap-1" in markdown
    assert "Linux:\n\n```sh\n./rke_linux-amd64 etcd snapshot-restore --name snap-1" in markdown


def test_platform_linux_shows_only_linux(rke_dir: Path) -> None:
    markdown = ha_markdown(rke_dir, platform="linux")
    assert "rke_linux-amd64" in markdown and "Linux:" in markdown
    assert "darwin" not in markdown and "macOS" not in markdown


def test_blanks_for_values_not_given_and_given_values_shown(rke_dir: Path) -> None:
    markdown = ha_markdown(rke_dir, "prior_version=v2.0.8")
    assert re.search(r"^- `snapshot` = ________ — .*\(required, not given\)$", markdown, re.MULTILINE)
    assert re.search(r"^- `prior_version` = `v2\.0\.8` — .*\(command line\)$", markdown, re.MULTILINE)
    assert re.search(r"^- `rollout_timeout` = `10m` — .*\(default\)$", markdown, re.MULTILINE)
    assert "--name ________ --config rancher-cluster.yml" in markdown
    assert "cattle-server=rancher/rancher:v2.0.8" in markdown
    manual = next(i for i in task_items(markdown) if i.heading.startswith("6."))
    assert (
        "(expected: v2.0.8)" in manual.text and "name ________________ time ________________" in manual.text
    )


def test_steps_carry_their_facts_confirmation_result_and_manual_text(rke_dir: Path) -> None:
    markdown = ha_markdown(rke_dir, "snapshot=snap-1")
    assert f"`restore-snapshot` · on this machine · in {rke_dir} · timeout 30 min" in markdown
    assert "`restart-components` · on nodes (3 hosts) · 10 at a time · timeout 10 min" in markdown
    assert "**Confirm before running:** This overwrites the cluster's etcd data" in markdown
    assert "Type: `snap-1`" in markdown
    assert (
        "Expected result: The rollback begins. Rancher Server may be unavailable for a few minutes."
        in markdown
    )
    assert "> Log into Rancher. Confirm that the rollback succeeded" in markdown
    assert "> **WARNING:** Rolling back to a previous version of Rancher destroys any changes" in markdown


@pytest.fixture
def secret_runbook(tmp_path: Path) -> Path:
    path = tmp_path / "secret.yml"
    path.write_text(SECRET_RUNBOOK, encoding="utf-8")
    return path


def test_secrets_never_appear(secret_runbook: Path) -> None:
    plan = plan_of(Options(str(secret_runbook), var=("region=eu-1",), environ={"RUNBOOK_VAR_TOKEN": SECRET}))
    for text in (to_markdown(build(plan)), to_html(build(plan))):
        assert SECRET not in text
        assert "(secret: entered at run time)" in text
        assert "${RUNBOOK_SECRET_TOKEN}" in text
        assert "TOKEN=********" in text


def test_secrets_never_appear_even_from_a_journal_that_holds_one(
    secret_runbook: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    write_run(state, [], runbook=secret_runbook, variables={"token": SECRET, "region": "eu-1"})
    for fmt in ("md", "html"):
        out = tmp_path / f"filled.{fmt}"
        command.main(Options(str(secret_runbook), environ={}), filling(fmt, str(out), state))
        text = out.read_text(encoding="utf-8")
        assert SECRET not in text and "eu-1" in text


def test_runbook_text_cannot_inject_html_or_break_the_style_sheet(secret_runbook: Path) -> None:
    plan = plan_of(Options(str(secret_runbook), var=("region=eu-1",), environ={}))
    html = to_html(build(plan))
    assert "<b>API</b>" not in html and "&lt;b&gt;API&lt;/b&gt;" in html
    assert "<i>clients</i>" not in html and "&lt;i&gt;clients&lt;/i&gt;" in html
    assert html.count("</style>") == 1
    assert (
        r'@top-right { content: "Rotate the \3c b\3e API\3c /b\3e  token \22 now\22  \3c /style\3e ";' in html
    )
    markdown = to_markdown(build(plan))
    assert "<b>" not in MarkdownIt("commonmark").render(markdown)


def test_html_is_one_standalone_print_page(rke_dir: Path) -> None:
    html = to_html(build(plan_of(ha_options(rke_dir))), "a4")
    for fetch in ("<script", "<link", "src=", "url(", "@import", "http://", "https://"):
        assert fetch not in html
    assert "size: A4;" in html
    assert 'content: "Page " counter(page) " of " counter(pages)' in html
    assert 'content: "rancher-ha-rollback  1.0.0"' in html
    assert "break-inside: avoid" in html and "white-space: pre-wrap; overflow-wrap: anywhere" in html
    assert html.count("\u2610") == 1 + 3 + 8  # warnings read, 3 preflight checks, 8 step-and-host boxes
    assert "size: letter;" in to_html(build(plan_of(ha_options(rke_dir))), "letter")


# -- filled from a journal ---------------------------------------------------------------------------


def write_run(
    state_dir: Path,
    records: list[dict[str, Any]],
    runbook: Path = HA,
    variables: dict[str, Any] | None = None,
    run_id: str = RUN_ID,
) -> None:
    """A journal as the runner writes it (engine/journal.py's documented records), with fixed times."""
    text = runbook.read_text(encoding="utf-8")
    header = {
        "type": "run",
        "run_id": run_id,
        "runbook": {
            "name": re.search(r"^name: (\S+)", text, re.MULTILINE)[1],  # type: ignore[index]
            "version": "1.0.0",
            "sha256": sha256_text(text),
            "path": str(runbook),
        },
        "variables": variables or {},
        "platform": "linux",
        "engine_version": "0.1.0",
        "user": "ann",
        "hostname": "jump-1",
        "pid": 4242,
        "argv": ["runbook", "run"],
        "time": "2026-11-26T12:00:00.000Z",
    }
    with Journal.create(state_dir, header, run_id=run_id) as journal:
        for record in records:
            journal.append(record)


def ran(
    step: str,
    host: str,
    start: str,
    seconds: float,
    status: str = "ok",
    exit_code: int | None = 0,
    attempt: int = 1,
) -> list[dict[str, Any]]:
    end = f"2026-11-26T{_add(start, seconds)}.000Z"
    return [
        {
            "type": "step-start",
            "step": step,
            "host": host,
            "attempt": attempt,
            "time": f"2026-11-26T{start}.000Z",
        },
        {
            "type": "step-end",
            "step": step,
            "host": host,
            "status": status,
            "exit_code": exit_code,
            "duration": seconds,
            "stdout_tail": "",
            "stderr_tail": "",
            "attempt": attempt,
            "time": end,
        },
    ]


def _add(clock: str, seconds: float) -> str:
    h, m, s = (int(x) for x in clock.split(":"))
    total = h * 3600 + m * 60 + s + int(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


VALUES = {
    "snapshot": "snap-2026",
    "prior_version": "v2.0.8",
    "cluster_config": "rancher-cluster.yml",
    "kubeconfig": "kube_config_rancher-cluster.yml",
    "rollout_timeout": "10m",
}
WARNINGS_OK = {
    "type": "confirmation",
    "step": None,
    "question": "Have you read the warnings above?",
    "answer": "yes",
    "user": "ann",
    "by": "operator",
    "time": "2026-11-26T12:00:01.000Z",
}
RESTORE_OK = {
    "type": "confirmation",
    "step": "restore-snapshot",
    "question": "Type the snapshot name",
    "answer": "snap-2026",
    "ok": True,
    "user": "ann",
    "by": "operator",
    "time": "2026-11-26T12:00:04.000Z",
}


def up_to_the_nodes(rke_dir: Path, node_2: str = "ok") -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [
        WARNINGS_OK,
        RESTORE_OK,
        *ran("restore-snapshot", "local", "12:00:05", 42.5),
        *ran("rke-up", "local", "12:01:00", 185.2),
    ]
    for index, node in enumerate(NODES):
        failed = node == "10.0.0.2" and node_2 != "ok"
        records += ran(
            "restart-components",
            node,
            f"12:04:1{index}",
            3.25 + index,
            status=node_2 if failed else "ok",
            exit_code=1 if failed else 0,
        )
    return records


def filled(rke_dir: Path, tmp_path: Path, records: list[dict[str, Any]], fmt: str = "md") -> str:
    state = tmp_path / "state"
    write_run(state, records, variables={**VALUES, "rke_dir": str(rke_dir)})
    out = tmp_path / f"filled.{fmt}"
    assert command.main(Options(str(HA), environ={}), filling(fmt, str(out), state)) == 0
    return out.read_text(encoding="utf-8")


def test_a_finished_run_ticks_every_step_and_host_and_shows_the_answer(rke_dir: Path, tmp_path: Path) -> None:
    records = [
        *up_to_the_nodes(rke_dir),
        *ran("set-image", "local", "12:05:00", 1.4),
        *ran("wait-rollout", "local", "12:05:02", 96.0),
        {
            "type": "step-start",
            "step": "check-version",
            "host": "operator",
            "attempt": 1,
            "time": "2026-11-26T12:07:00.000Z",
        },
        {
            "type": "manual",
            "step": "check-version",
            "host": "operator",
            "prompt": "Version shown",
            "answer": "v2.0.8",
            "expected": "v2.0.8",
            "ok": True,
            "user": "ann",
            "by": "operator",
            "time": "2026-11-26T12:07:41.000Z",
        },
        *ran("check-version", "operator", "12:07:00", 41.0, exit_code=None),
        {"type": "run-end", "status": "ok", "exit_code": 0, "time": "2026-11-26T12:07:42.000Z"},
    ]
    markdown = filled(rke_dir, tmp_path, records)
    steps = [i for i in task_items(markdown) if i.section == "Steps"]
    assert len(steps) == 8 and all(i.checked for i in steps)
    text = {i.heading[:2] + i.text.split(" ")[0]: i.text for i in steps}
    assert text["1.Done"] == "Done — ✓ ok · started 12:00:05 UTC · ended 12:00:47 UTC · 42.5 s · exit 0"
    assert "3 min 05 s · exit 0" in text["2.Done"]
    assert text["3.`10.0.0.3`"] == (
        "`10.0.0.3` — ✓ ok · started 12:04:12 UTC · ended 12:04:17 UTC · 5.2 s · exit 0"
    )
    assert text["6.Version"] == (
        "Version shown in the bottom-left corner: **v2.0.8** (expected: v2.0.8), "
        "as expected — by ann at 12:07:41 UTC"
    )
    assert "Confirmed by ann at 12:00:04 UTC." in markdown
    warnings = next(i for i in task_items(markdown) if "warnings" in i.text)
    assert warnings.checked and warnings.text.endswith("Confirmed by ann at 12:00:01 UTC")
    assert (
        f"- Run: `{RUN_ID}` by ann on jump-1, started 2026-11-26 12:00:00 UTC, ended 12:07:42 UTC: **ok** (exit 0)"
        in markdown
    )
    # the run's values render the plan: the commands shown are the ones that ran
    assert "./rke_linux-amd64 etcd snapshot-restore --name snap-2026" in markdown and "darwin" not in markdown
    assert (
        "- `snapshot` = `snap-2026` — Name of the etcd snapshot" in markdown and f"(run {RUN_ID})" in markdown
    )


def test_a_failed_run_crosses_the_host_and_leaves_later_steps_empty(rke_dir: Path, tmp_path: Path) -> None:
    records = [
        *up_to_the_nodes(rke_dir, node_2="failed"),
        {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-11-26T12:04:30.000Z"},
    ]
    items = [i for i in task_items(filled(rke_dir, tmp_path, records)) if i.section == "Steps"]
    by_host = {i.text.split(" ")[0]: i for i in items if i.heading.startswith("3.")}
    assert by_host["`10.0.0.2`"].text == (
        "`10.0.0.2` — ✗ **FAILED** · started 12:04:11 UTC · ended 12:04:15 UTC · 4.2 s · exit 1"
    )
    assert not by_host["`10.0.0.2`"].checked
    assert by_host["`10.0.0.1`"].checked and by_host["`10.0.0.3`"].checked
    later = [i for i in items if i.heading[:2] in ("4.", "5.", "6.")]
    assert len(later) == 3 and not any(i.checked for i in later)
    assert all("________________" in i.text and "UTC" not in i.text for i in later)


def test_a_step_started_but_never_ended_and_a_retry(rke_dir: Path, tmp_path: Path) -> None:
    records = [
        *up_to_the_nodes(rke_dir),
        *ran("set-image", "local", "12:05:00", 1.0, "failed", 1),
        *ran("set-image", "local", "12:05:10", 1.5, attempt=2),
        {
            "type": "step-start",
            "step": "wait-rollout",
            "host": "local",
            "attempt": 1,
            "time": "2026-11-26T12:05:20.000Z",
        },
    ]
    markdown = filled(rke_dir, tmp_path, records)
    steps = {i.heading[:2]: i for i in task_items(markdown) if i.section == "Steps"}
    assert steps["4."].checked and steps["4."].text.endswith("1.5 s · exit 0 · attempt 2")
    assert not steps["5."].checked
    assert steps["5."].text == "Done — – **started, no end recorded** · started 12:05:20 UTC"
    assert "**no end recorded**" in markdown


def test_a_declined_confirmation_is_shown_as_such(rke_dir: Path, tmp_path: Path) -> None:
    declined = {**RESTORE_OK, "answer": "snap-typo", "ok": False}
    markdown = filled(rke_dir, tmp_path, [WARNINGS_OK, declined])
    assert "NOT confirmed (answered 'snap-typo') by ann at 12:00:04 UTC." in markdown


def test_filled_html_marks_boxes(rke_dir: Path, tmp_path: Path) -> None:
    records = [
        *up_to_the_nodes(rke_dir, node_2="timed_out"),
        {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-11-26T12:04:30.000Z"},
    ]
    html = filled(rke_dir, tmp_path, records, "html")
    assert html.count("\u2611") == 3 + 1 + 4  # the checks (a step started: they passed), warnings, steps
    assert html.count("\u2612") == 1  # the node that timed out
    assert html.count("\u2610") == 3  # the 3 steps not reached
    assert "TIMED OUT" in html and "exit 1" in html and "started 12:04:11 UTC" in html


def test_checks_are_ticked_once_a_step_started_and_left_blank_by_a_failed_preflight(
    rke_dir: Path, tmp_path: Path
) -> None:
    """Issue 23 bug 6: preflight checks are not journaled one by one; a step that started proves they
    passed. A run that stopped at preflight leaves them as they were."""
    ran_steps = filled(rke_dir, tmp_path / "a", [*up_to_the_nodes(rke_dir)])
    assert ran_steps.count("- [x] The RKE binary used for the upgrade is in rke_dir and executable") == 1
    stopped = [
        {"type": "run-end", "status": "preflight-failed", "exit_code": 3, "time": "2026-11-26T12:00:01.000Z"}
    ]
    at_preflight = filled(rke_dir, tmp_path / "b", stopped)
    assert at_preflight.count("- [ ] The RKE binary used for the upgrade is in rke_dir and executable") == 1


def test_journal_of_another_runbook_or_missing_is_refused(
    rke_dir: Path, tmp_path: Path, secret_runbook: Path
) -> None:
    state = tmp_path / "state"
    write_run(state, [], runbook=secret_runbook)
    with pytest.raises(UsageError, match=r"is a run of runbook 'secret-demo', not 'rancher-ha-rollback'"):
        command.main(ha_options(rke_dir), filling("md", None, state))
    with pytest.raises(UsageError, match=r"no journal at .*nope"):
        command.main(ha_options(rke_dir), filling("md", None, state, "nope"))


def test_a_changed_runbook_is_said_to_have_changed(rke_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ha.yml"
    copy.write_text(HA.read_text(encoding="utf-8"), encoding="utf-8")
    state = tmp_path / "state"
    write_run(state, [], runbook=copy, variables={**VALUES, "rke_dir": str(rke_dir)})
    copy.write_text(HA.read_text(encoding="utf-8") + "\n# edited after the run\n", encoding="utf-8")
    out = tmp_path / "out.md"
    command.main(Options(str(copy), environ={}), filling("md", str(out), state))
    assert "**The runbook changed since this run**" in out.read_text(encoding="utf-8")


# -- the command line --------------------------------------------------------------------------------


def test_cli_writes_markdown_and_html_and_refuses_unknown_format(rke_dir: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", "checklist", str(HA), "--var", f"rke_dir={rke_dir}", *args],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = cli("--var", "snapshot=snap-1")
    assert shown.returncode == 0, shown.stderr
    assert len([i for i in task_items(shown.stdout) if i.section == "Steps"]) == 8
    page = tmp_path / "checklist.html"
    written = cli("--format", "html", "-o", str(page), "--paper", "letter")
    assert written.returncode == 0, written.stderr
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    wrong = cli("--format", "pdf")
    assert wrong.returncode == 2 and "--format 'pdf': choose one of md, html" in wrong.stderr


FILL = """\
runbook: 1
name: fill
version: "1"
title: Fill
steps:
  - id: probe
    title: Find the container
    run: echo container-7f3a
  - id: stop
    title: Stop it
    run: echo stop {{ steps.probe.stdout | trim }}
"""


def test_a_filled_checklist_shows_the_values_the_run_knew(tmp_path: Path, home: Path) -> None:
    """Issue 23 bug 6: a command over an earlier step's output shows what the journal has, not a blank."""
    from runbooks import in_process

    (tmp_path / "fill.yml").write_text(FILL, encoding="utf-8")
    env = {**os.environ, "HOME": str(home)}
    assert in_process(["run", "fill.yml", "--state-dir", "st"], tmp_path, env).returncode == 0
    [run_id] = [p.name for p in (tmp_path / "st" / "runs").iterdir()]
    blank = in_process(["checklist", "fill.yml"], tmp_path, env)
    assert "echo stop ________ (from step 1)" in blank.stdout
    done = in_process(["checklist", "fill.yml", "--journal", run_id, "--state-dir", "st"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "echo stop container-7f3a" in done.stdout and "________" not in done.stdout
