"""A rehearsal's two outer faces: practice at a real pseudo-terminal (the person answers, and the report
says so), and the HTML report printed by headless Chromium (read back from the PDF by poppler)."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest
from rehearsing import RUNBOOK, drill_lab, rehearse
from test_checklist_browser import pdf_info, pdf_text, print_to_pdf, squeeze

WAIT = 30


def test_practice_asks_the_person_and_the_report_marks_their_answers(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    child = pexpect.spawn(
        str(RUNBOOK),
        ["rehearse", "drill.yml", "--var", f"canary={lab / 'CANARY'}", "-o", "report.md"],
        cwd=str(lab),
        timeout=WAIT,
        encoding="utf-8",
        dimensions=(40, 200),
    )
    child.logfile_read = open(lab / "screen.txt", "w", encoding="utf-8")  # noqa: SIM115 (closed by pexpect)
    child.expect_exact("Have you read the warnings above, and do you want to go on? [y/N]")
    child.sendline("y")
    child.expect_exact("Type 'drill' to go on (Enter to decline):")
    child.sendline("drill")
    child.expect_exact("Open the dashboard and read the version.")
    child.expect_exact("Version shown:")
    child.sendline("v2")
    child.expect(pexpect.EOF)
    child.close()
    screen = (lab / "screen.txt").read_text(encoding="utf-8")
    assert child.exitstatus == 0, screen
    report = (lab / "report.md").read_text(encoding="utf-8")
    assert "| questions answered | by the person at the terminal |" in report
    assert "Version shown → 'v2', answered by a person" in report
    assert "→ 'drill', answered by a person" in report
    assert not (lab / "CANARY").exists()


@pytest.mark.browser
def test_the_html_report_prints(tmp_path: Path) -> None:
    lab = drill_lab(tmp_path)
    done = rehearse(lab, "--auto", "--fail", "restart@node-b.invalid=3", "-o", "report.html")
    assert done.returncode == 1, done.stderr
    page = lab / "report.html"
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    pdf = tmp_path / "report.pdf"
    print_to_pdf(page, pdf)
    assert int(pdf_info(pdf)["Pages"]) >= 2
    first = pdf_text(pdf, 1)
    assert "Rehearsal of drill 1.0.0: nothing was executed" in first and "Page 1 of" in first
    text = squeeze(pdf_text(pdf))
    for expected in (
        "Rehearsal:Adrillofeverykeyarehearsaldrives",
        "Timeline(simulatedclock)",
        "`--failrestart@node-b.invalid=3`hitrestart@node-b.invalid(itsoutcome:failed)".replace("`", ""),
        f"touch{lab}/CANARY".replace(" ", ""),
        "Coverage:pathsthisrehearsalnevertook",
        "all-only:when:mode=='all'wasnevertrue",
    ):
        assert expected in text, expected
