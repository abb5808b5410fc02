"""The `--state` flag of every command that reads or writes runs (run, runs, checklist, state).

A password in it is refused, as a secret given with `--var` is: `ps` and the shell's history would have it,
and a run journals its command line. libpq finds the password where it belongs: `~/.pgpass`, `PGPASSWORD`,
or a `RUNBOOK_STATE` in the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import UsageError
from engine.flags import option

_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/@?]*:[^/@?]*@|(?:^|\s|[?&])password\s*=", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class StateOptions:
    state: str | None = option(
        None,
        help="The team's shared state: a PostgreSQL connection string or URI (postgresql://…, service=NAME); "
        "default $RUNBOOK_STATE; unset: the files of --state-dir. No password here: ~/.pgpass.",
        metavar="CONNINFO",
    )

    def __post_init__(self) -> None:
        if self.state and _PASSWORD.search(self.state):
            raise UsageError(
                "--state: a password on the command line is visible in `ps`, the shell's history and the "
                "run's journal; put it in ~/.pgpass (or PGPASSWORD, or RUNBOOK_STATE in the environment)"
            )


FROM_ENVIRONMENT = StateOptions()
"""No `--state`: `$RUNBOOK_STATE`, else the files (the default of the commands' `main`)."""
