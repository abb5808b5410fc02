"""`runbook validate FILE`: schema, templates and lint, every problem at once; nothing runs."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.validation import validate


def main(file: str) -> int:
    validated = validate(Path(file), file)
    for warning in validated.warnings:
        print(warning, file=sys.stderr)
    runbook = validated.runbook
    print(
        f"{file}: ok — {runbook.name} {runbook.version}, {len(runbook.steps)} steps"
        + (f", {len(validated.warnings)} warning(s)" if validated.warnings else "")
    )
    return 0
