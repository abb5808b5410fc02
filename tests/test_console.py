"""engine/console.py: on a pipe or a file the terminal writes plain text without importing rich — exactly
the text rich wrote there (each case is checked against rich itself), masked."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.console import Terminal
from engine.masking import MASK, Masker
from engine.outcomes import HostOutcome, Status

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2-secret"
TEXTS = [
    "▶ [1/6] restore-snapshot: Restore the etcd snapshot",
    f"password {SECRET} in a message",
    "[bold]not markup[/bold] and [/] and [link=x]",
    "tabs\tat\tstops\tand a trailing tab\t",
    "wide 日本語\tthen a tab",  # rich counts cells: left to rich
    "control \x07bell \x08back \x0bvt \x0cff \r\ncr, \x1b[31mescape\x1b[0m kept",
    "escape \x1b then\ta tab",  # a zero-width character before a tab: left to rich
    "back\\slash \\[not a tag] and a final \\",  # rich's escaping changes these: left to rich
    "multi\nline\n\nwith blank lines\n",
    ":warning: stays text, trailing spaces stay   ",
    "",
]


def _rich_console(out: io.StringIO) -> Console:
    """The console `Terminal` used for every line before it learned to write plain text."""
    return Console(file=out, highlight=False, soft_wrap=True, emoji=False)


def _terminal(out: io.StringIO, answers: str = "") -> Terminal:
    return Terminal(Masker([SECRET]), out=out, answers=io.StringIO(answers))


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("style", [None, "bold red"])
def test_a_said_line_is_what_rich_wrote(text: str, style: str | None) -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    _terminal(ours).say(text, style)
    _rich_console(theirs).print(escape(text.replace(SECRET, MASK)), style=style)
    assert ours.getvalue() == theirs.getvalue()
    assert SECRET not in ours.getvalue()


def test_a_question_is_what_rich_wrote_and_the_piped_answer_is_shown() -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    assert _terminal(ours, answers="yes\n").confirm(f"go on with {SECRET}?")
    rich = _rich_console(theirs)
    rich.print(escape(f"go on with {MASK}? [y/N]") + " ", end="", style="bold")
    rich.print("yes")
    assert ours.getvalue() == theirs.getvalue()


def _outcomes(step: str, host: str) -> list[HostOutcome]:
    return [
        HostOutcome("restore-snapshot", "local", Status.OK, 0, 0.24),
        HostOutcome(step, host, Status.FAILED, 127, 12.25, 3, "failed"),
        HostOutcome("check-version", "operator", Status.SKIPPED, None, 0.0),
    ]


def _rich_summary(outcomes: list[HostOutcome]) -> str:
    """The summary as `Terminal.summary` drew it with rich."""
    out = io.StringIO()
    table = Table(title="Summary", title_justify="left")
    for column in ("step", "host", "status", "exit", "duration"):
        table.add_column(column, justify="right" if column in ("exit", "duration") else "left")
    for o in outcomes:
        code = "" if o.exit_code is None else str(o.exit_code)
        tries = f", {o.attempts} attempts" if o.attempts > 1 else ""
        table.add_row(
            escape(o.step), escape(o.host), f"[red]{o.status.value}[/]", code, f"{o.duration:.1f}s{tries}"
        )
    _rich_console(out).print(table)
    return out.getvalue()


@pytest.mark.parametrize(
    ("step", "host"),
    [
        ("restart-components", "127.0.0.2"),
        ("a-step-whose-id-is-long-enough-to-make-the-table-wider-than-the-page", "node-with-a-long-name"),
        ("wide", "nœud-日本"),  # not ASCII: left to rich
        ("back\\slash", "[odd]"),
    ],
)
@pytest.mark.parametrize("columns", ["80", "120"])
def test_the_summary_is_the_table_rich_drew(
    step: str, host: str, columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)  # what rich reads for the page width where there is no terminal
    outcomes = _outcomes(step, host)
    ours = io.StringIO()
    _terminal(ours).summary(outcomes)
    assert ours.getvalue() == _rich_summary(outcomes)


PIPE_PROBE = """\
import sys
from engine.console import Terminal
from engine.masking import MASK, Masker
from engine.outcomes import HostOutcome, Status
terminal = Terminal(Masker(["hunter2-secret"]))
terminal.say("step 1: hunter2-secret", "bold")
terminal.output("node", "stdout", "a line")
terminal.summary([HostOutcome("step", "node", Status.OK, 0, 0.1)])
with terminal.progress(3, "connecting") as advance:
    advance()
print("rich:", "rich" in sys.modules)
"""


def test_a_pipe_never_imports_rich() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PIPE_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "step 1: ********",
        "node | a line",
        "Summary",
        "┏━━━━━━┳━━━━━━┳━━━━━━━━┳━━━━━━┳━━━━━━━━━━┓",
        "┃ step ┃ host ┃ status ┃ exit ┃ duration ┃",
        "┡━━━━━━╇━━━━━━╇━━━━━━━━╇━━━━━━╇━━━━━━━━━━┩",
        "│ step │ node │ ok     │    0 │     0.1s │",
        "└──────┴──────┴────────┴──────┴──────────┘",
        "rich: False",
    ]
