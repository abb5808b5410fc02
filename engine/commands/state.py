"""`runbook state migrate`: create or upgrade the team state's schema in a PostgreSQL database.

Run once by whoever owns the database (and again after an engine upgrade); safe to repeat and to run twice
at once. The operators' group (`runbook_operators`, or `--operators ROLE`) must exist; it gets what a run
needs, and each operator logs in as their own role, a member of it. `--take-over` needs the migrating role
to be a superuser or a member of `pg_signal_backend` (it owns the function that ends a silent holder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from engine.errors import UsageError
from engine.flags import argument, option
from engine.state.options import StateOptions


class Action(StrEnum):
    MIGRATE = "migrate"


@dataclass(frozen=True, kw_only=True)
class StateCommand:
    action: Action = argument(
        help="migrate: create or upgrade the schema, and grant the operators.", metavar="ACTION"
    )
    operators: str = option(
        "runbook_operators",
        help="The group role whose members are operators (default: runbook_operators).",
        metavar="ROLE",
    )


def main(chosen: StateCommand, where: StateOptions) -> int:
    spec = where.state or os.environ.get("RUNBOOK_STATE")
    if not spec:
        raise UsageError("state migrate: which database? Give --state CONNINFO or set RUNBOOK_STATE")
    from engine.state.postgres import connecting, schema

    parsed = connecting.parse(spec)
    with connecting.connect(parsed) as connection:
        before, after = schema.migrate(connection, chosen.operators)
    done = "already up to date" if before == after else f"migrated from v{before} to v{after}"
    print(f"{parsed.describe()}: state schema {done}; operators: members of {chosen.operators}")
    return 0
