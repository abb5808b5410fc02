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
    """Plain text (or simple Markdown) as paragraphs: blank lines separate them, `code` spans are kept."""
    blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return Markup("").join(Markup("<p>{}</p>").format(_inline_code(b)) for b in blocks)


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
