"""`runbook list [--dir DIR]`: the runbooks in a directory and below it, with name, version and title.

Only runbooks: a YAML file that says `runbook:` at its top level (the format's first key). Cluster files,
values files and playbooks beside them are not runbooks and are not listed; hidden directories (`.runbook`
with the journals, `.git`) are not searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidRunbook, UsageError
from engine.flags import option
from engine.rehearsal import is_scenario
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
    for path in (p for p in _runbooks(root) if not is_scenario(p)):
        try:
            runbook = validate(path, str(path)).runbook
            rows.append((str(path), runbook.name, runbook.version, runbook.title))
        except InvalidRunbook as error:
            count = len(error.problems)
            rows.append(
                (str(path), "(invalid)", "", f"{count} problem{'s' if count != 1 else ''}: run validate")
            )
    if not rows:
        print(f"no runbooks in {directory}")
        return 0
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


_FORMAT_KEY = re.compile(r"^runbook[ \t]*:", re.M)


def _runbooks(root: Path) -> Iterator[Path]:
    """The runbook files under `root`, in path order (hidden directories left out)."""
    for path in sorted(p for pattern in ("*.yml", "*.yaml") for p in root.rglob(pattern)):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts[:-1])
        if not hidden and path.is_file() and _FORMAT_KEY.search(_head(path)):
            yield path


def _head(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return file.read(65536)
    except OSError:
        return ""
