"""A run id prefix as a SQL `LIKE` pattern, for every query that names a run by the start of its id."""

from __future__ import annotations


def like_prefix(prefix: str) -> str:
    """`prefix` matched literally (its `\\`, `%` and `_` escaped with LIKE's default escape `\\`), then
    anything: `R_1` names `R_1…`, never `RX1…`."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
