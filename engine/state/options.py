"""The `--state` flag of every command that reads or writes runs (run, runs, checklist, state)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.flags import option


@dataclass(frozen=True, kw_only=True)
class StateOptions:
    state: str | None = option(
        None,
        help="The team's shared state: a PostgreSQL connection string or URI (postgresql://…, service=NAME); "
        "default $RUNBOOK_STATE; unset: the files of --state-dir.",
        metavar="CONNINFO",
    )


FROM_ENVIRONMENT = StateOptions()
"""No `--state`: `$RUNBOOK_STATE`, else the files (the default of the commands' `main`)."""
