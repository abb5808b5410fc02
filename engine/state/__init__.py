"""Where runs are kept: `open_state` chooses the backend, the one place that does.

The seam is `engine.state.base` (`StateBackend`, `RunWriter`); the file backend (`engine.state.files`) is
today's `.runbook` directory; a libpq connection string or URI chooses the team's shared state on PostgreSQL
(`engine.state.postgres`, imported only then: psycopg is never loaded for the files).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import UsageError
from engine.journal import default_state_dir
from engine.state.base import LockHolder, RunSummary, RunWriter, StateBackend
from engine.state.files import FileState

__all__ = ["REHEARSALS", "LockHolder", "RunSummary", "RunWriter", "StateBackend", "open_state", "rehearsals"]

REHEARSALS = "rehearsals"
"""Under the state directory: the rehearsals' own runs and locks, apart from the real ones (so `run --resume`
never finds one, and a rehearsal never holds or waits for a real run's lock)."""


def open_state(spec: str | None, cwd: Path, state_dir: str | None = None) -> StateBackend:
    """The backend named by `spec` (`--state`; None: `$RUNBOOK_STATE`); unset or empty: files in
    `state_dir` (`--state-dir`), else `$RUNBOOK_STATE_DIR`, else `cwd/.runbook`."""
    local = Path(state_dir) if state_dir else default_state_dir(cwd)
    spec = spec if spec is not None else os.environ.get("RUNBOOK_STATE")
    if not spec:
        return FileState(local)
    if is_libpq(spec):
        from engine.state.postgres.backend import PostgresState

        return PostgresState(spec, local)
    raise UsageError(
        f"--state {spec!r}: not a PostgreSQL connection string (postgresql://…, service=NAME, host=… "
        "dbname=…); leave it unset for the files in .runbook"
    )


def is_libpq(spec: str) -> bool:
    """A libpq URI (`postgresql://`, `postgres://`) or key=value connection string (`service=team`)."""
    return spec.startswith(("postgresql://", "postgres://")) or "=" in spec


def rehearsals(cwd: Path, state_dir: str | None = None) -> FileState:
    """Where `runbook rehearse` keeps its runs: files under the state directory's `rehearsals/`, whatever
    backend real runs use, since a rehearsal is practice on this machine (its call log is a file beside
    the journal: `FileState.directory`)."""
    return FileState((Path(state_dir) if state_dir else default_state_dir(cwd)) / REHEARSALS)
