"""`runbook schema`: print the JSON Schema, or where the installed one is, for editors and other tools."""

from __future__ import annotations

from dataclasses import dataclass

from engine.flags import option
from engine.schema import SCHEMA_PATH


@dataclass(frozen=True, kw_only=True)
class SchemaOptions:
    path: bool = option(False, help="Print the installed schema's file path instead (for editor settings).")


def main(chosen: SchemaOptions) -> int:
    """`path`: the file's absolute path, to map runbook files to it in an editor's settings (no modeline
    needed, and it follows the engine when it is upgraded)."""
    path = chosen.path
    print(
        SCHEMA_PATH.resolve() if path else SCHEMA_PATH.read_text(encoding="utf-8"), end="\n" if path else ""
    )
    return 0
