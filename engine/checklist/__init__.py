"""Printable checklists from the plan: a view model (`model`), filled from a journal (`filling`), rendered as
Markdown (`markdown`) or one standalone print-ready HTML file (`html`)."""

from __future__ import annotations

from engine.checklist.model import Checklist, build


def to_markdown(checklist: Checklist) -> str:
    from engine.checklist import markdown

    return markdown.render(checklist)


def to_html(checklist: Checklist, paper: str = "auto") -> str:
    from engine.checklist import html

    return html.render(checklist, paper)


__all__ = ["Checklist", "build", "to_html", "to_markdown"]
