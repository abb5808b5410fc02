"""Helpers of the rehearsal tests: a lab with the drill runbook (tests/data/rehearsal) and `runbook` itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

RUNBOOK = Path(sys.executable).with_name("runbook")
DATA = Path(__file__).resolve().parent / "data" / "rehearsal"
WAIT = 120


def drill_lab(tmp_path: Path) -> Path:
    """A working directory holding the drill, its used runbook and its default scenario."""
    lab = tmp_path / "lab"
    lab.mkdir(parents=True)
    for name in ("drill.yml", "inner.yml", "drill.rehearsal.yml"):
        shutil.copy(DATA / name, lab / name)
    return lab


def runbook(lab: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *args],
        cwd=lab,
        capture_output=True,
        text=True,
        timeout=WAIT,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        check=False,
    )


def rehearse(lab: Path, *args: str, book: str = "drill.yml") -> subprocess.CompletedProcess[str]:
    return runbook(lab, "rehearse", book, "--var", f"canary={lab / 'CANARY'}", *args)


def calls(lab: Path) -> list[dict[str, Any]]:
    """Every command the simulated hosts were asked, from the (one) rehearsal's run directory."""
    (found,) = (lab / ".runbook" / "rehearsals" / "runs").glob("*/rehearsal.json")
    listed: list[dict[str, Any]] = json.loads(found.read_text())["calls"]
    return listed


def journal(lab: Path) -> list[dict[str, Any]]:
    (found,) = (lab / ".runbook" / "rehearsals" / "runs").glob("*/journal.jsonl")
    return [json.loads(line) for line in found.read_text().splitlines() if line.strip()]


def section(report: str, title: str) -> str:
    """The text of a report's section (## or ###) up to the next heading."""
    after = report.split(f" {title}\n", 1)[1]
    return after.split("\n#", 1)[0]
