"""Everything the operator sees and answers during a run, masked on the way out.

Every byte that reaches the terminal goes through the `Masker`, so no code path can print a secret by
accident. Questions read a line from standard input: on a terminal a person answers; in automation the
answers can be piped in, and end-of-file means "no", so nothing runs without an explicit yes.

On a terminal, rich draws the styles and the summary table. On a pipe or a file (automation, `| tee`, CI
logs) there are no styles to draw, and rich costs a run ~45 ms of import plus its rendering per line, so
the same text is written directly (`_plain_text`, `_plain_table`: exactly what rich would write there);
rich is imported only for what those cannot reproduce (tabs beside wide characters, backslashes that its
markup escaping changes, a table wider than the page).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import IO, TYPE_CHECKING

from engine.masking import Masker
from engine.outcomes import HostOutcome, Status

if TYPE_CHECKING:
    from rich.console import Console

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
        self.file = out or sys.stdout
        self.answers = answers or sys.stdin
        self._lock = threading.Lock()
        # a pipe or a file: no styles, so no rendering either (rich decides when the environment may say so)
        self._plain = _surely_not_a_terminal(self.file) or not self.console.is_terminal

    @cached_property
    def console(self) -> Console:
        """rich, for a terminal and for what the plain path cannot write alike; built on first use."""
        from rich.console import Console

        # emoji=False: a command printing ":warning:" must be shown as it printed it, not as an emoji.
        return Console(file=self.file, highlight=False, soft_wrap=True, emoji=False)

    def say(self, text: str, style: str | None = None) -> None:
        self._print(self.masker.mask(text), style)

    def _print(self, text: str, style: str | None, end: str = "\n") -> None:
        """`text` (masked already) as rich prints it, styled on a terminal; plain text where rich would."""
        plain = _plain_text(text) if self._plain else None
        with self._lock:
            if plain is not None:
                self.file.write(plain + end)
                self.file.flush()
            else:
                from rich.markup import escape

                self.console.print(escape(text), style=style, end=end)

    def output(self, host: str, stream: str, line: str) -> None:
        """One line of a command's output, prefixed by its host (called from reader threads)."""
        text = self.masker.mask(line)
        if self._plain:  # what rich would write there, ~100x cheaper: a 10 MiB output is 10,000+ lines
            with self._lock:
                self.file.write(f"{host} {'|' if stream == 'stdout' else '!'} {text.translate(_STRIPPED)}\n")
                self.file.flush()
            return
        from rich.markup import escape

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
            f"{_STATUS_MARK[outcome.status]} {outcome.host}: {outcome.status.label}{code} "
            f"in {_took(outcome)}{detail}",
            style,
        )

    def retrying(self, outcome: HostOutcome, delay: float) -> None:
        why = f" ({outcome.reason})" if outcome.reason else ""
        self.say(
            f"  {outcome.host}: attempt {outcome.attempts} failed{why}; retrying in {delay:g}s", "yellow"
        )

    def ask(self, question: str) -> str | None:
        """A line typed by the operator, or None at end of input (nobody there to answer)."""
        try:
            self._print(self.masker.mask(question) + " ", "bold", end="")
            self.file.flush()
            line = self._line()
        except KeyboardInterrupt:
            self.file.write("\n")  # the terminal echoed ^C on the question's line: what follows starts anew
            raise
        if not line:
            self.say("(no answer: end of input)", "yellow")
            return None
        answer = line.rstrip("\r\n")
        if not self.answers.isatty():  # a piped answer is not echoed by a terminal: show it, for the record
            self.say(answer)
        return answer

    def _line(self) -> str:
        """One line of the answers ("" at their end); at a terminal read with line editing (arrows, Ctrl-A/E,
        Ctrl-U: GNU readline, as the value prompts have), so a typo is fixed where it is."""
        if self.answers is not sys.stdin or not sys.stdin.isatty():
            return self.answers.readline()
        import readline  # noqa: F401  (imported for its effect: `input` edits the line)

        try:
            return input() + "\n"
        except EOFError:
            return ""

    def confirm(self, question: str) -> bool:
        answer = self.ask(f"{question} [y/N]")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    def summary(self, outcomes: Iterable[HostOutcome]) -> None:
        """The table of every step run on every host; nothing at all when no step ran."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        rows = [
            (o.step, o.host, o.status.label, "" if o.exit_code is None else str(o.exit_code), _took(o))
            for o in outcomes
        ]
        plain = _plain_table("Summary", _COLUMNS, rows, _page_width()) if self._plain else None
        if plain is not None:
            with self._lock:
                self.file.write(plain)
                self.file.flush()
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="Summary", title_justify="left")
        for column, right in _COLUMNS:
            table.add_column(column, justify="right" if right else "left")
        for outcome in outcomes:
            status = f"[{_STATUS_STYLE[outcome.status]}]{outcome.status.label}[/]"
            code = "" if outcome.exit_code is None else str(outcome.exit_code)
            table.add_row(escape(outcome.step), escape(outcome.host), status, code, _took(outcome))
        with self._lock:
            self.console.print(table)

    @contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[[], None]]:
        """A progress bar for a fan-out, yielding `advance()` (thread-safe); drawn only on a terminal."""
        if total < 2 or self._plain:
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
        from rich.markup import escape

        task = progress.add_task(escape(label), total=total)
        with progress:
            yield lambda: progress.advance(task)


def _took(outcome: HostOutcome) -> str:
    """The whole time a step took on a host, every attempt and the waits between them counted."""
    tries = f", {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    return f"{outcome.duration:.1f}s{tries}"


_COLUMNS = (("step", False), ("host", False), ("status", False), ("exit", True), ("duration", True))
# What rich removes from text it prints (rich.control.STRIP_CONTROL_CODES: BEL, BS, VT, FF, CR).
_STRIPPED = dict.fromkeys((7, 8, 11, 12, 13))
_TABS_EXPANDABLE = re.compile(r"[\x20-\x7e\t\n]*")  # tab stops counted in characters, as rich counts cells
_CELL = re.compile(r"[\x20-\x5b\x5d-\x7e]*")  # printable ASCII but the backslash: one cell per character


def _surely_not_a_terminal(file: IO[str]) -> bool:
    """No terminal, and no variable that rich reads to be told otherwise (TTY_COMPATIBLE, FORCE_COLOR)."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    try:
        return not file.isatty()
    except (AttributeError, ValueError):  # rich: no isatty, or a closed file, is no terminal
        return True


def _plain_text(text: str) -> str | None:
    """What rich prints for `text` where it draws no styles, or None where only rich knows: it expands
    tabs by cell width (wide and zero-width characters), and its markup escaping turns `\\[` into `[`
    and a final `\\` into two."""
    text = text.translate(_STRIPPED)
    if "\\" in text:
        return None
    if "\t" in text:
        if not _TABS_EXPANDABLE.fullmatch(text):
            return None
        text = text.expandtabs(8)
    return text


def _page_width() -> int:
    """The width rich lays a table out in when not on a terminal: $COLUMNS, else the size of whichever
    standard stream is a terminal, else 80 (rich's `Console.size`)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for descriptor in (0, 1, 2):
        try:
            return os.get_terminal_size(descriptor).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


def _plain_table(
    title: str, columns: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]], width: int
) -> str | None:
    """rich's default table (heavy head, title on the left) as rich writes it without styles, or None when
    it would not fit in `width` (rich would wrap its cells) or a cell is not plain ASCII."""
    cells = [[name for name, _ in columns], *rows]
    if not all(_CELL.fullmatch(cell) for row in cells for cell in row):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if sum(widths) + 3 * len(widths) + 1 > width:
        return None

    def line(row: Sequence[str], edge: str) -> str:
        padded = (
            f" {cell.rjust(w) if right else cell.ljust(w)} "
            for cell, w, (_, right) in zip(row, widths, columns, strict=True)
        )
        return edge + edge.join(padded) + edge

    def rule(left: str, middle: str, right: str, fill: str) -> str:
        return left + middle.join(fill * (w + 2) for w in widths) + right

    return "\n".join(
        [
            title,
            rule("┏", "┳", "┓", "━"),
            line(cells[0], "┃"),
            rule("┡", "╇", "┩", "━"),
            *(line(row, "│") for row in rows),
            rule("└", "┴", "┘", "─"),
            "",
        ]
    )
