"""The checklist as one standalone HTML page for printing: styles inline, no scripts, nothing fetched.

Page furniture comes from CSS paged media, which headless Chromium prints (checked by the browser tests):
`@page` margin boxes carry the runbook name and version on top of every page and "Page N of M" below
(`counter(page)`, `counter(pages)`). `paper` picks the `@page size`: `auto` leaves it to the print dialog
(A4 or Letter); the margins fit both.
"""

from __future__ import annotations

import functools
import re

import jinja2
from markupsafe import Markup, escape

from engine.checklist import timeline
from engine.checklist.filling import (
    STATUS_LABELS,
    clock,
    confirmation_text,
    duration,
    tick,
    who,
)
from engine.checklist.model import Checklist
from engine.history import Attempt, RunHistory

PAPER_SIZES = {"auto": "auto", "a4": "A4", "letter": "letter"}
EMPTY, TICKED, CROSSED = "\u2610", "\u2611", "\u2612"  # ☐ ☑ ☒: text, so the PDF's text layer has them too


def render(checklist: Checklist, paper: str = "auto") -> str:
    template = environment().get_template("checklist.html")
    return template.render(c=checklist, page_size=PAPER_SIZES[paper], status_labels=STATUS_LABELS)


def render_run(run: RunHistory, paper: str = "auto") -> str:
    """One run as a standalone page (`runbook runs --run-id ID --format html`): its facts, its timeline
    and every step on every host, from the journal alone (no runbook file needed)."""
    book = run.runbook
    page = {
        "name": book.name,
        "version": book.version or "",
        "title": f"run {run.run_id}",
        "sha256": book.sha256,
        "run": run,
        "day": run.started.partition("T")[0],
    }
    template = environment().get_template("run.html")
    return template.render(c=page, page_size=PAPER_SIZES[paper], status_labels=STATUS_LABELS)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engine.checklist", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        css_string=css_string,
        paragraphs=paragraphs,
        words=words,
        clock=clock,
        duration=duration,
        box=box,
        confirmation=confirmation_text,
    )
    env.globals.update(who=who, timeline=timeline.svg)
    return env


def css_string(text: str) -> Markup:
    """`text` as a quoted CSS string, safe inside <style> (no quote, backslash, newline or `<` left raw)."""
    escaped = re.sub(r'[\\"<>\n\r]', lambda m: f"\\{ord(m.group()):x} ", text)
    return Markup(f'"{escaped}"')


def paragraphs(text: str) -> Markup:
    """Plain text (or simple Markdown) as paragraphs and lists: blank lines separate paragraphs, lines that
    start with `-`, `*` or `1.` are list items (an indented line continues the item), `code` spans are kept."""
    parts: list[Markup] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        kind, lines = "", list[str]()
        for line in block.splitlines():
            item = _ITEM.match(line)
            if item is None and kind in ("ul", "ol") and line[:1].isspace():
                lines[-1] += " " + line.strip()  # the item goes on
                continue
            now = ("ol" if item.group(1)[0].isdigit() else "ul") if item else "p"
            if now != kind:  # a paragraph, or a list, begins
                parts += _flush(kind, lines)
                kind, lines = now, []
            lines.append(line[item.end() :] if item else line)
        parts += _flush(kind, lines)
    return Markup("").join(parts)


_ITEM = re.compile(r"^\s*([-*+]|[0-9]+[.)])\s+")


def _flush(kind: str, lines: list[str]) -> list[Markup]:
    texts = [" ".join(line.split()) for line in lines if line.strip()]
    if not texts:
        return []
    if kind == "p":
        return [Markup("<p>{}</p>").format(_inline_code(" ".join(texts)))]
    items = Markup("").join(Markup("<li>{}</li>").format(_inline_code(t)) for t in texts)
    return [Markup("<{0}>{1}</{0}>").format(Markup(kind), items)]


def _inline_code(text: str) -> Markup:
    parts = re.split(r"`([^`]+)`", text)
    return Markup("").join(
        escape(p) if i % 2 == 0 else Markup("<code>{}</code>").format(p) for i, p in enumerate(parts)
    )


def words(line: str) -> Markup:
    """A command line with each word kept whole (`kube-proxy` never breaks at its hyphen): lines wrap at
    spaces only. A word too long for a line (over 60 characters) may still break anywhere, never overflow."""
    return Markup("").join(
        Markup('<span class="w">{}</span>').format(part)
        if 0 < len(part) <= 60 and not part.isspace()
        else escape(part)
        for part in re.split(r"(\s+)", line)
    )


def box(outcome: Attempt | None) -> str:
    return {True: TICKED, False: CROSSED, None: EMPTY}[tick(outcome)]
