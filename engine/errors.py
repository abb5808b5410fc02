"""One exception root, mapped to exit codes in one place (`engine.cli`).

Every error a user can cause is a `RunbookError`; anything else that escapes is a bug and is shown as one.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_INVALID = 2
EXIT_PREFLIGHT = 3
EXIT_INTERRUPTED = 130


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
    """Root of every error caused by the user's input or environment; `exit_code` says how the CLI ends."""

    exit_code = EXIT_INVALID


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


class ConnectionFailed(PreflightFailed):
    """An SSH host could not be reached, or its identity could not be trusted."""


class HostKeyError(ConnectionFailed):
    """A host key is unknown or has changed; the message carries its fingerprint."""


class StepFailed(RunbookError):
    """A step failed and the run stopped there."""

    exit_code = EXIT_STEP_FAILED


class JournalError(RunbookError):
    """The journal cannot be written; the run must not go on without a record."""

    exit_code = EXIT_STEP_FAILED


class LockHeld(RunbookError):
    """Another run of the same runbook holds the lock."""

    exit_code = EXIT_INVALID


class Interrupted(RunbookError):
    """The operator pressed Ctrl-C (or the run got SIGINT/SIGTERM)."""

    exit_code = EXIT_INTERRUPTED
