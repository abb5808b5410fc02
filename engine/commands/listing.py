"""`runbook list [--dir DIR]`: the runbooks in a directory with name, version and title."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidRunbook, UsageError
from engine.flags import option
from engine.validation import validate


@dataclass(frozen=True, kw_only=True)
class ListOptions:
    dir: str = option(
        "runbooks", help="Directory to list (default: runbooks).", metavar="DIR", also_positional=True
    )


def main(chosen: ListOptions) -> int:
    directory = chosen.dir
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"{directory}: not a directory")
    rows = []
    for path in sorted(root.glob("*.y*ml")):
        try:
            runbook = validate(path, str(path)).runbook
            rows.append((str(path), runbook.name, runbook.version, runbook.title))
        except InvalidRunbook as error:
            rows.append((str(path), "(invalid)", "", f"{len(error.problems)} problem(s): run validate"))
    if not rows:
        print(f"no runbooks in {directory}")
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0
