"""`runbook schema`: print the JSON Schema, for editors and other tools."""

from __future__ import annotations

from engine.schema import SCHEMA_PATH


def main() -> int:
    print(SCHEMA_PATH.read_text(encoding="utf-8"), end="")
    return 0
