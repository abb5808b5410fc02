"""`runbook state migrate`: create or upgrade the team state's schema in a PostgreSQL database.

Run once by whoever owns the database (and again after an engine upgrade); safe to repeat and to run twice
at once. The operators' group (`runbook_operators`, or `--operators ROLE`) must exist; it gets what a run
needs, and each operator logs in as their own role, a member of it.
"""

from __future__ import annotations

import os

from engine.errors import UsageError

ACTIONS = ("migrate",)


def main(action: str, spec: str | None, operators: str) -> int:
    if action not in ACTIONS:
        raise UsageError(f"state {action!r}: expected one of {', '.join(ACTIONS)}")
    spec = spec or os.environ.get("RUNBOOK_STATE")
    if not spec:
        raise UsageError("state migrate: which database? Give --state CONNINFO or set RUNBOOK_STATE")
    from engine.state.postgres import connecting, schema

    parsed = connecting.parse(spec)
    with connecting.connect(parsed) as connection:
        before, after = schema.migrate(connection, operators)
    done = "already up to date" if before == after else f"migrated from v{before} to v{after}"
    print(f"{parsed.describe()}: state schema {done}; operators: members of {operators}")
    return 0
