"""The report's few kinds of block, written as Markdown or as one standalone, print-ready HTML page.

`report` says what the report holds; this module only how each block looks, so the two formats cannot
tell different stories. Text is escaped for its format here and nowhere else; `code` cells are commands,
shown verbatim (in a code span, or a <code> element).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]
    empty: str = "none"


@dataclass(frozen=True)
class Code:
    """A cell or line shown as written: a command, an output."""

    text: str


Cell = str | Code


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


Block = Heading | Para | Items | Table


def markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Para):
            out += [block.text, ""]
        elif isinstance(block, Items):
            out += [f"- {item}" for item in block.items] or [f"- {block.empty}"]
            out.append("")
        else:
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
    return "\n".join(out)


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Code):
        text = cell.text.rstrip("\n").replace("\n", " ⏎ ")
        if not text:
            return ""
        fence = "``" if "`" in text else "`"
        return f"{fence} {text} {fence}".replace("|", "\\|")
    return cell.replace("\n", "<br>").replace("|", "\\|")


_STYLE = """
body { font: 10.5pt/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; border-bottom: 1px solid #999; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
tr { page-break-inside: avoid; }
code { font: 9pt ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
@page {
  margin: 0.625in;
  @top-left { content: HEADER; font: 600 8pt sans-serif; vertical-align: bottom; padding-bottom: 3mm; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 600 8.5pt sans-serif; }
}
"""


def page(title: str, blocks: Sequence[Block]) -> str:
    """One standalone page: styles inline, nothing fetched; every printed page is headed with `title`
    and numbered ("Page N of M", `@page` margin boxes, which Chromium prints)."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Items):
            items = block.items or (block.empty,)
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE.replace('HEADER', _css_string(title))}</style>"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Code):
        return f"<code>{html.escape(cell.text.rstrip(chr(10)))}</code>" if cell.text.strip() else ""
    return _inline(cell)


def _inline(text: str) -> str:
    """Text with `code spans`, as HTML: the spans become <code>, everything is escaped."""
    parts = text.split("`")
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p).replace("\n", "<br>")
        for i, p in enumerate(parts)
    )


def _css_string(text: str) -> str:
    """`text` as a CSS string literal; a `<` escaped too, so it cannot end the <style> element."""
    escaped = "".join(c if c.isalnum() or c in " .,:;-_()[]/@+=" else f"\\{ord(c):x} " for c in text)
    return f'"{escaped}"'
