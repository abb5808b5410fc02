"""Where runs are kept: `open_state` chooses the backend, the one place that does.

The seam is `engine.state.base` (`StateBackend`, `RunWriter`); the file backend (`engine.state.files`) is
today's `.runbook` directory.
"""

from __future__ import annotations

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
    """The backend named by `spec` (`--state`, `$RUNBOOK_STATE`); unset: files in `state_dir`
    (`--state-dir`), else `$RUNBOOK_STATE_DIR`, else `cwd/.runbook`."""
    if not spec:
        return FileState(Path(state_dir) if state_dir else default_state_dir(cwd))
    raise UsageError(f"--state {spec!r}: no state backend takes this (only files are built in)")


def rehearsals(cwd: Path, state_dir: str | None = None) -> FileState:
    """Where `runbook rehearse` keeps its runs: files under the state directory's `rehearsals/`, whatever
    backend real runs use, since a rehearsal is practice on this machine (its call log is a file beside
    the journal: `FileState.directory`)."""
    return FileState((Path(state_dir) if state_dir else default_state_dir(cwd)) / REHEARSALS)
