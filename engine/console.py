"""Everything the operator sees and answers during a run, masked on the way out.

Every byte that reaches the terminal goes through the `Masker`, so no code path can print a secret by
accident. Questions read a line from standard input: on a terminal a person answers; in automation the
answers can be piped in, and end-of-file means "no", so nothing runs without an explicit yes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.control import strip_control_codes
from rich.markup import escape
from rich.table import Table

from engine.masking import Masker
from engine.outcomes import HostOutcome, Status

_STATUS_STYLE = {
    Status.OK: "green",
    Status.FAILED: "bold red",
    Status.TIMED_OUT: "bold red",
    Status.INTERRUPTED: "yellow",
    Status.SKIPPED: "dim",
    Status.UNKNOWN: "yellow",
    Status.DONE_BEFORE: "dim green",
}
_STATUS_MARK = {
    Status.OK: "✓",
    Status.FAILED: "✗",
    Status.TIMED_OUT: "✗",
    Status.INTERRUPTED: "!",
    Status.SKIPPED: "-",
    Status.UNKNOWN: "?",
    Status.DONE_BEFORE: "✓",
}


class Terminal:
    """Masked, thread-safe output with host prefixes; line-based questions on standard input."""

    def __init__(self, masker: Masker, out: IO[str] | None = None, answers: IO[str] | None = None) -> None:
        self.masker = masker
        # emoji=False: a command printing ":warning:" must be shown as it printed it, not as an emoji.
        self.console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True, emoji=False)
        self.answers = answers or sys.stdin
        self._lock = threading.Lock()
        self._plain = not self.console.is_terminal  # a pipe or a file: no styles, so no rendering either

    def say(self, text: str, style: str | None = None) -> None:
        with self._lock:
            self.console.print(escape(self.masker.mask(text)), style=style)

    def output(self, host: str, stream: str, line: str) -> None:
        """One line of a command's output, prefixed by its host (called from reader threads)."""
        text = self.masker.mask(line)
        if self._plain:  # what rich would write there, ~100x cheaper: a 10 MiB output is 10,000+ lines
            with self._lock:
                self.console.file.write(
                    f"{host} {'|' if stream == 'stdout' else '!'} {strip_control_codes(text)}\n"
                )
                self.console.file.flush()
            return
        prefix = (
            f"[dim]{escape(host)} |[/dim] " if stream == "stdout" else f"[yellow]{escape(host)} ![/yellow] "
        )
        with self._lock:
            self.console.print(prefix + escape(text))

    def result(self, outcome: HostOutcome) -> None:
        style = _STATUS_STYLE[outcome.status]
        detail = f" ({outcome.reason})" if outcome.reason and outcome.reason != outcome.status.value else ""
        code = f" exit {outcome.exit_code}" if outcome.exit_code not in (None, 0) else ""
        self.say(
            f"{_STATUS_MARK[outcome.status]} {outcome.host}: {outcome.status.value}{code} "
            f"in {_took(outcome)}{detail}",
            style,
        )

    def ask(self, question: str) -> str | None:
        """A line typed by the operator, or None at end of input (nobody there to answer)."""
        with self._lock:
            self.console.print(escape(self.masker.mask(question)) + " ", end="", style="bold")
            self.console.file.flush()
        line = self.answers.readline()
        if not line:
            self.say("(no answer: end of input)", "yellow")
            return None
        answer = line.rstrip("\r\n")
        if not self.answers.isatty():  # a piped answer is not echoed by a terminal: show it, for the record
            self.say(answer)
        return answer

    def confirm(self, question: str) -> bool:
        answer = self.ask(f"{question} [y/N]")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    def summary(self, outcomes: Iterable[HostOutcome]) -> None:
        """The table of every step run on every host; nothing at all when no step ran."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        table = Table(title="Summary", title_justify="left")
        for column in ("step", "host", "status", "exit", "duration"):
            table.add_column(column, justify="right" if column in ("exit", "duration") else "left")
        for outcome in outcomes:
            status = f"[{_STATUS_STYLE[outcome.status]}]{outcome.status.value}[/]"
            code = "" if outcome.exit_code is None else str(outcome.exit_code)
            table.add_row(escape(outcome.step), escape(outcome.host), status, code, _took(outcome))
        with self._lock:
            self.console.print(table)

    @contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[[], None]]:
        """A progress bar for a fan-out, yielding `advance()` (thread-safe); drawn only on a terminal."""
        if total < 2 or not self.console.is_terminal:
            yield lambda: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        task = progress.add_task(escape(label), total=total)
        with progress:
            yield lambda: progress.advance(task)


def _took(outcome: HostOutcome) -> str:
    """The whole time a step took on a host, every attempt and the waits between them counted."""
    tries = f", {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    return f"{outcome.duration:.1f}s{tries}"
