"""The HTML checklist printed by a real browser: headless Chromium prints it to PDF (A4 and US Letter), and
poppler reads the PDF back. A missing Chromium or poppler is a failure, not a skip: CI installs both.

Page 1 is written as a PNG to test-artifacts/ so a person can look at it.
"""

from __future__ import annotations

import collections
import contextlib
import html
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_checklist import HA, NODES, RUN_ID, VALUES, ran, up_to_the_nodes, write_run

from engine.checklist import build, to_html
from engine.checklist.html import CROSSED, EMPTY, TICKED
from engine.commands import checklist as command
from engine.commands import history
from engine.commands.checklist import ChecklistOptions, Format, Paper
from engine.commands.history import Format as RunsFormat
from engine.commands.history import RunsOptions
from engine.options import Options, prepare
from engine.planning import Plan

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
PAGE_POINTS = {"a4": (595, 842), "letter": (612, 792)}
BOXES = EMPTY + TICKED + CROSSED


def tool(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).exists()), None)
    if found is None:
        pytest.fail(
            f"{name} is needed for the checklist print tests (apt-get install chromium poppler-utils)"
        )
    return found


def print_to_pdf(html: Path, pdf: Path) -> None:
    """Print like an operator's browser would, with nothing of the browser's own header or footer."""
    profile = pdf.parent / f"{pdf.stem}-profile"
    subprocess.run(
        [
            tool("chromium", "/usr/bin/chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert pdf.stat().st_size > 0


def pdf_text(pdf: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        [tool("pdftotext"), "-layout", *pages, str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def pdf_info(pdf: Path) -> dict[str, str]:
    out = subprocess.run(
        [tool("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def squeeze(text: str) -> str:
    """Without any whitespace: a command wrapped over lines (or between a hyphen and what follows) compares equal."""
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class Printed:
    paper: str
    plan: Plan
    pdf: Path
    text: str
    pages: list[str]


@pytest.fixture(scope="module", params=["a4", "letter"])
def printed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printed]:
    """The blank ha-rollback checklist (3-node cluster file, snapshot and version left blank), printed."""
    paper: str = request.param
    directory = tmp_path_factory.mktemp(f"print-{paper}")
    rke = directory / "rke"
    rke.mkdir()
    (rke / "rancher-cluster.yml").write_text(
        "nodes:\n" + "".join(f"  - address: {a}\n    user: rancher\n    role: [worker]\n" for a in NODES),
        encoding="utf-8",
    )
    plan = prepare(
        Options(str(HA), var=(f"rke_dir={rke}",), environ={}), any_platform=True, allow_missing=True
    )[1]
    html = directory / "checklist.html"
    html.write_text(to_html(build(plan), paper), encoding="utf-8")
    pdf = directory / "checklist.pdf"
    print_to_pdf(html, pdf)
    count = int(pdf_info(pdf)["Pages"])
    yield Printed(paper, plan, pdf, pdf_text(pdf), [pdf_text(pdf, n) for n in range(1, count + 1)])


def test_every_command_is_printed_in_full(printed: Printed) -> None:
    text = squeeze(printed.text)
    hosts = [h for c in printed.plan.checks for h in c.hosts] + [
        h for s in printed.plan.steps for h in s.hosts
    ]
    commands = {v.script for h in hosts for v in h.variants}
    assert len(commands) == 12  # the .rkestate check has a macOS and a Linux form
    for script in commands:
        assert squeeze(script) in text, f"not printed in full: {script}"
    set_image = (
        "kubectl --kubeconfig=kube_config_rancher-cluster.yml set image deployment/cattle "
        "cattle-server=rancher/rancher:________ -n cattle-system"
    )
    assert squeeze(set_image) in text


def test_one_box_per_step_and_host(printed: Printed) -> None:
    before, _, steps = printed.text.partition("STEPS")
    assert sum(steps.count(b) for b in BOXES) == 8
    assert sum(before.count(b) for b in BOXES) == 1 + 3  # warnings read, and the 3 preflight checks
    for node in NODES:
        assert re.search(rf"{EMPTY}\s+{re.escape(node)}\s+TIME", steps), node
    assert len(re.findall(rf"{EMPTY}\s+Done\s+TIME\s+_*\s*INITIALS", steps)) == 4  # the local steps
    assert re.search(rf"{EMPTY}\s+Done\s+NAME\s+_*\s*TIME", steps)  # the manual step's sign-off


def test_page_size_count_header_and_numbers(printed: Printed) -> None:
    info = pdf_info(printed.pdf)
    width, height = (round(float(x)) for x in re.findall(r"[\d.]+", info["Page size"])[:2])
    assert (width, height) == PAGE_POINTS[printed.paper]
    count = len(printed.pages)
    assert 2 <= count <= 6, f"{count} pages for a 6-step runbook"
    for number, page in enumerate(printed.pages, 1):
        flat = " ".join(page.split())
        assert "rancher-ha-rollback 1.0.0" in flat and "Rolling back — high availability installs" in flat
        assert f"Page {number} of {count}" in flat


def test_a_step_is_never_split_across_pages(printed: Printed) -> None:
    titles = [f"{s.number} {s.step.title}" for s in printed.plan.steps]
    for planned, title in zip(printed.plan.steps, titles):
        where = [n for n, page in enumerate(printed.pages) if title in " ".join(page.split())]
        assert len(where) == 1, title
        page = " ".join(printed.pages[where[0]].split())
        step = re.split("|".join(map(re.escape, titles)) + "|NOTES AND SIGN-OFF", page.split(title, 1)[1])[0]
        assert sum(step.count(b) for b in BOXES) == max(1, len(planned.hosts)), (
            f"{planned.id}: boxes elsewhere"
        )
        for host in planned.hosts:
            for variant in host.variants:
                assert squeeze(variant.script) in squeeze(step), f"{planned.id} runs onto another page"
        if planned.manual:
            assert "Done NAME" in step, f"{planned.id}: its sign-off is on another page"


def test_page_one_is_written_for_a_person_to_look_at(printed: Printed) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    name = "checklist-page1" + ("" if printed.paper == "a4" else f"-{printed.paper}")
    subprocess.run(
        [
            tool("pdftoppm"),
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(printed.pdf),
            str(ARTIFACTS / name),
        ],
        check=True,
        timeout=60,
    )
    png = (ARTIFACTS / f"{name}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    expected = [p * 80 / 72 for p in PAGE_POINTS[printed.paper]]
    assert abs(width - expected[0]) <= 1 and abs(height - expected[1]) <= 1
    first = " ".join(printed.pages[0].split())
    assert "WARNING" in first and "Rolling back to a previous version of Rancher destroys" in first


def test_a_filled_checklist_prints_its_ticks_and_crosses(tmp_path: Path) -> None:
    rke = tmp_path / "rke"
    rke.mkdir()
    (rke / "rancher-cluster.yml").write_text(
        "nodes:\n" + "".join(f"  - address: {a}\n    user: rancher\n    role: [worker]\n" for a in NODES),
        encoding="utf-8",
    )
    records = [
        *up_to_the_nodes(rke, node_2="failed"),
        *ran("set-image", "local", "12:05:00", 1.0),
        {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-11-26T12:05:30.000Z"},
    ]
    write_run(tmp_path / "state", records, variables={**VALUES, "rke_dir": str(rke)})
    html = tmp_path / "filled.html"
    command.main(
        Options(str(HA), environ={}),
        ChecklistOptions(
            format=Format.HTML,
            output=str(html),
            journal=RUN_ID,
            state_dir=str(tmp_path / "state"),
            paper=Paper.A4,
        ),
    )
    pdf = tmp_path / "filled.pdf"
    print_to_pdf(html, pdf)
    everything = pdf_text(pdf)
    steps = everything.partition("STEPS")[2]
    assert (steps.count(TICKED), steps.count(CROSSED), steps.count(EMPTY)) == (5, 1, 2)
    timeline = everything.partition("TIMELINE")[2].partition("STEPS")[0]  # drawn, and printed as text too
    assert "restart-components · 10.0.0.2" in timeline and "✗ FAILED 4.2 s" in timeline
    assert re.search(rf"{CROSSED}\s+10\.0\.0\.2\s+FAILED · started 12:04:11 UTC · 4\.2 s · exit 1", steps)
    assert "snapshot-restore --name snap-2026" in steps
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        [
            tool("pdftoppm"),
            "-png",
            "-r",
            "80",
            "-f",
            "3",
            "-l",
            "3",
            "-singlefile",
            str(pdf),
            str(ARTIFACTS / "checklist-filled-page3"),
        ],
        check=True,
        timeout=60,
    )


def word_boxes(pdf: Path) -> list[tuple[str, float, float, float]]:
    """(word, left x, right x, top y) of every word poppler finds in the PDF, in points."""
    out = subprocess.run(
        [tool("pdftotext"), "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>'
    return [
        (html.unescape(w), float(left), float(right), float(y))
        for left, y, right, w in re.findall(pattern, out)
    ]


def test_the_run_page_draws_each_step_and_host_on_the_time_axis(tmp_path: Path) -> None:
    """`runs --run-id ID --format html`, printed by Chromium: every bar's label sits where its end is on the
    axis (read back from the PDF's word positions), the failed host and the unfinished step are marked."""
    records = [
        *ran("restore-snapshot", "local", "12:00:05", 42.5),
        *ran("rke-up", "local", "12:01:00", 185.2),
        *[
            r
            for i, node in enumerate(NODES)
            for r in ran("restart-components", node, f"12:04:1{i}", 3.25 + i)
        ],
        *ran("restart-components", "10.0.0.9", "12:04:20", 50.0, status="failed", exit_code=1),
        {
            "type": "step-start",
            "step": "wait-rollout",
            "host": "local",
            "attempt": 1,
            "time": "2026-11-26T12:05:02.000Z",
        },
        {"type": "run-end", "status": "failed", "exit_code": 1, "time": "2026-11-26T12:06:30.000Z"},
    ]
    write_run(tmp_path / "state", records)
    page = tmp_path / "run.html"
    with page.open("w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        assert (
            history.main(
                RunsOptions(state_dir=str(tmp_path / "state"), run_id=RUN_ID, format=RunsFormat.HTML)
            )
            == 0
        )
    assert "<script" not in page.read_text(encoding="utf-8")
    pdf = tmp_path / "run.pdf"
    print_to_pdf(page, pdf)
    text = pdf_text(pdf)
    assert "TIMELINE" in text and "? no end recorded" in text and "✗ FAILED 50.0 s" in text

    words = word_boxes(pdf)
    rows = collections.Counter(y for w, _, _, y in words if w == "min")
    axis = next(y for y, count in rows.items() if count == 6)  # "0 s", "1 min" … "6 min": the tick row
    tick_row = [(w, left, right) for w, left, right, y in words if y == axis]
    assert [w for w, _, _ in tick_row[::2]] == ["0", "1", "2", "3", "4", "5", "6"]
    # a tick's label is centred on its time: the middle of its number and its unit
    centres = [(tick_row[i][1] + tick_row[i + 1][2]) / 2 for i in range(0, len(tick_row), 2)]
    minute = (centres[6] - centres[0]) / 6
    assert all(abs(centres[m] - centres[0] - m * minute) < 1 for m in range(7))  # an even axis

    def at(seconds: float) -> float:
        return centres[0] + seconds / 60 * minute

    labels: dict[str, float] = {}  # a bar's label follows its end (the first of each: the table comes after)
    for w, left, _, _ in words:
        labels.setdefault(w, left)
    assert 0 < labels["42.5"] - at(47.5) < 5  # restore-snapshot ends at 0:47.5
    assert 0 < labels["✗"] - at(310) < 5  # the failed host ends at 5:10
    assert 0 < labels["?"] - at(390) < 5  # the unfinished step reaches the run's end, 6:30

    ARTIFACTS.mkdir(exist_ok=True)
    picture = ARTIFACTS / "run-timeline"
    subprocess.run(
        [tool("pdftoppm"), "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(picture)],
        check=True,
        timeout=60,
    )
    assert picture.with_suffix(".png").stat().st_size > 0


LONG_SKIP = """\
runbook: 1
name: drain
version: "1"
title: Drain
variables:
  stage: {default: dev}
steps:
  - id: drain
    title: Drain the node
    description: |
      Before draining:

      - check the pod disruption budgets
      - tell the on-call channel
      1. first this
      2. then that
    when: stage == 'production' and stage != 'staging-with-a-very-long-name-that-goes-on-and-on' and stage != 'x'
    run: kubectl drain node-1
"""


def pdf_words(pdf: Path) -> list[tuple[str, float]]:
    """(word, right edge in points) of every word of the PDF, as poppler reads them."""
    out = subprocess.run(
        [tool("pdftotext"), "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    found = re.findall(
        r'<word xMin="[0-9.]+" yMin="[0-9.]+" xMax="([0-9.]+)" yMax="[0-9.]+">([^<]*)</word>', out
    )
    return [(html.unescape(word), float(right)) for right, word in found]


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_a_long_skip_reason_wraps_and_a_markdown_list_stays_a_list(tmp_path: Path, paper: str) -> None:
    """Issue 23 bug 6: TIME and INITIALS stay inside the step's box (on the page) whatever the reason's
    length; a description's Markdown list prints as a list, one item a line."""
    book = tmp_path / "drain.yml"
    book.write_text(LONG_SKIP, encoding="utf-8")
    plan = prepare(Options(str(book), environ={}), any_platform=True)[1]
    page = tmp_path / "drain.html"
    page.write_text(to_html(build(plan), paper), encoding="utf-8")
    assert "<ul><li>check the pod disruption budgets</li><li>tell the on-call channel</li></ul>" in (
        page.read_text()
    )
    pdf = tmp_path / "drain.pdf"
    print_to_pdf(page, pdf)
    width = PAGE_POINTS[paper][0]
    words = pdf_words(pdf)
    assert [w for w, _ in words].count("INITIALS") == 1
    assert all(right <= width - 36 for _, right in words), [w for w in words if w[1] > width - 36]
    lines = pdf_text(pdf).splitlines()
    assert any(line.strip().endswith("check the pod disruption budgets") for line in lines)
    assert any(line.strip().endswith("tell the on-call channel") for line in lines)
