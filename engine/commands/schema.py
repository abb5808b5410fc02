"""`runbook schema`: print the JSON Schema, or where the installed one is, for editors and other tools."""

from __future__ import annotations

from engine.schema import SCHEMA_PATH


def main(path: bool = False) -> int:
    """`path`: the file's absolute path, to map runbook files to it in an editor's settings (no modeline
    needed, and it follows the engine when it is upgraded)."""
    print(
        SCHEMA_PATH.resolve() if path else SCHEMA_PATH.read_text(encoding="utf-8"), end="\n" if path else ""
    )
    return 0
