"""Picking a run up where it stopped: which run, what finished, and whether the runbook changed since.

The journal is the only truth: a step and host that reported `ok` is done; one that started and never
reported an end is *unknown* and is run again only when someone says so (`--rerun-unknown`, or a yes).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.journal import JOURNAL_NAME, Journal, latest_unfinished, outcomes, read_journal
from engine.planning import sha256_text

LATEST = "latest"


@dataclass(frozen=True)
class Previous:
    run_id: str
    directory: Path
    values: dict[str, Any]
    outcomes: dict[tuple[str, str], str]
    sha256: str
    text: str | None

    def reopen(self, state_dir: Path) -> Journal:
        return Journal.reopen(state_dir, self.run_id)


def find(state_dir: Path, runbook_name: str, which: str) -> Previous:
    """The run to resume: the latest unfinished one of this runbook, or the one named."""
    if which == LATEST:
        summary = latest_unfinished(state_dir, runbook_name)
        if summary is None:
            raise UsageError(f"no unfinished run of {runbook_name!r} in {state_dir} to resume")
        run_id = summary.run_id
    else:
        run_id = which
    directory = state_dir / "runs" / run_id
    if not (directory / JOURNAL_NAME).is_file():
        raise UsageError(f"--resume {run_id}: no such run in {state_dir}")
    records = read_journal(directory / JOURNAL_NAME)
    header = records[0] if records and records[0].get("type") == "run" else {}
    if header.get("runbook", {}).get("name") != runbook_name:
        raise UsageError(f"--resume {run_id}: that run is of {header.get('runbook', {}).get('name')!r}, "
                         f"not {runbook_name!r}")
    if records[-1].get("type") == "run-end" and records[-1].get("status") == "ok":
        raise UsageError(f"--resume {run_id}: that run finished well; there is nothing to resume")
    saved = directory / "runbook.yml"
    return Previous(run_id, directory, dict(header.get("variables", {})), outcomes(records),
                    header.get("runbook", {}).get("sha256", ""),
                    saved.read_text(encoding="utf-8") if saved.is_file() else None)


def check_unchanged(previous: Previous, text: str, force: bool) -> str | None:
    """Refuse (unless forced) a runbook that changed since the run began; returns the diff shown."""
    if sha256_text(text) == previous.sha256:
        return None
    diff = "".join(difflib.unified_diff((previous.text or "").splitlines(True), text.splitlines(True),
                                        f"runbook as run ({previous.run_id})", "runbook now", n=1))
    if not force:
        raise UsageError(f"the runbook changed since run {previous.run_id} began; resuming could skip or repeat "
                         f"the wrong steps. Review the change, then pass --force to resume anyway:\n{diff}")
    return diff
