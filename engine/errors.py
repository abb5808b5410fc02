"""One exception root, and every exit code, each named here and decided by `exit_code()` alone.

Every error a user can cause is a `RunbookError`; its class says how the command ends (`exit_code`) and how
a run's journal records the end (`run_status`). Anything else that escapes is a bug and is shown as one
(70, EX_SOFTWARE). `engine.cli` is the one handler that turns them into messages and exits, the way
pre-commit's `error_handler` does.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from engine.statuses import RunStatus

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_INVALID = 2
EXIT_PREFLIGHT = 3
EXIT_CANNOT_WRITE = 73  # sysexits.h EX_CANTCREAT: an output file cannot be written (full disk, no permission)
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an internal error, with its traceback
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a command stopped by Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM stops a run the way Ctrl-C does
EXIT_BROKEN_PIPE = 1  # the reader of our output went away (`| head`): no traceback, not a success either


@dataclass(frozen=True)
class Problem:
    """One located problem in a runbook (or values) file, printed as `file:line:col: path: message`."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {what}"


class RunbookError(Exception):
    """Root of every error caused by the user's input or environment; `exit_code` says how the CLI ends,
    `run_status` how a run that stops on it ends in its journal."""

    exit_code = EXIT_INVALID
    run_status = RunStatus.FAILED


class InvalidRunbook(RunbookError):
    """The runbook, its variables or the command line are wrong; carries every problem found at once."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(RunbookError):
    """A command-line mistake that is not tied to a place in a file."""

    exit_code = EXIT_INVALID


class PreflightFailed(RunbookError):
    """Something needed before the first step is missing; nothing has run anywhere."""

    exit_code = EXIT_PREFLIGHT
    run_status = RunStatus.PREFLIGHT_FAILED


class ConnectionFailed(PreflightFailed):
    """An SSH host could not be reached, or its identity could not be trusted."""


class HostKeyError(ConnectionFailed):
    """A host key is unknown or has changed; the message carries its fingerprint."""


class StepFailed(RunbookError):
    """A step failed and the run stopped there."""

    exit_code = EXIT_STEP_FAILED


class Declined(StepFailed):
    """The operator answered no (to the warnings, or to a step's confirmation): what follows did not run."""

    run_status = RunStatus.DECLINED


class ApprovalTimedOut(RunbookError):
    """A step waited for its approvals longer than its `approval.timeout`: the run stops before it,
    resumable; an approval given later still counts."""

    exit_code = EXIT_STEP_FAILED
    run_status = RunStatus.AWAITING_APPROVAL


class JournalError(RunbookError):
    """The journal cannot be written; the run must not go on without a record."""

    exit_code = EXIT_STEP_FAILED


class CannotWrite(RunbookError):
    """A file the command makes (the export's playbook and inventory) cannot be written; none was changed."""

    exit_code = EXIT_CANNOT_WRITE


class LockLost(JournalError):
    """The run's lock was lost (a state backend's connection died, or another run took the lock over): the
    run stops before its next step; a resume continues it."""

    run_status = RunStatus.INTERRUPTED  # cut short, not failed: a resume continues it


class StateUnavailable(PreflightFailed):
    """The shared state cannot be used (its database unreachable, its schema missing, the login not an
    operator): refused before anything ran."""


class LockHeld(RunbookError):
    """Another run of the same runbook holds the lock."""

    exit_code = EXIT_INVALID


class Interrupted(RunbookError):
    """The operator pressed Ctrl-C (or the run got SIGINT/SIGTERM); `signal` says which."""

    exit_code = EXIT_INTERRUPTED
    run_status = RunStatus.INTERRUPTED

    def __init__(self, message: str = "interrupted", signal: str = "SIGINT") -> None:
        super().__init__(message)
        self.signal = signal
        self.exit_code = EXIT_TERMINATED if signal == "SIGTERM" else EXIT_INTERRUPTED


def exit_code(error: BaseException) -> int:
    """How a command ends on `error`: the one mapping of every ending to its exit code."""
    if isinstance(error, RunbookError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, BrokenPipeError):
        return EXIT_BROKEN_PIPE
    return EXIT_BUG
