"""YAML text with comments, for files a person reads before running them (PyYAML writes no comments).

Plays and tasks are dumped one by one and put together with their comments; multi-line strings (scripts,
manual texts) are written as `|` blocks so they read as they were written in the runbook.

Every value that comes from the runbook, its variables or its inventories goes through `data()` and is
written with Ansible's `!unsafe` tag: Ansible never templates such a string, wherever it is used (a task
argument, a task var read by an expression, an inventory var). Escaping `{% raw %}` cannot promise that
(Jinja ends a raw block at `{%endraw%}`, `{%- endraw %}`…); the tag does, for playbook and inventory alike.
Untagged strings are the engine's own: keywords, expressions and templates over names it chose. A task's
or play's `name` is always data.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

WIDTH = 110


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings; keys in the order they were built; lists indented under their key
    (the layout yamllint and ansible-lint expect)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


class Unsafe(str):
    """A string Ansible must pass on as written, never templated: made only by `data()`."""


UNSAFE_TAG = "!unsafe"


def _style(value: str) -> str | None:
    return "|" if "\n" in value.rstrip("\n") else None


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=_style(value))


def _unsafe(dumper: yaml.SafeDumper, value: Unsafe) -> yaml.ScalarNode:
    return dumper.represent_scalar(UNSAFE_TAG, str(value), style=_style(value))


_Dumper.add_representer(str, _str)
_Dumper.add_representer(Unsafe, _unsafe)


def data(value: Any) -> Any:
    """A runbook value as Ansible data: every string in it (lists and mappings too) tagged `!unsafe`;
    numbers, booleans and null are data already. Mapping keys stay as they are (names the engine checked)."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, (list, tuple)):
        return [data(item) for item in value]
    if isinstance(value, dict):
        return {key: data(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Item:
    """A mapping written as one list entry (a play or a task), with comment lines above it."""

    data: dict[str, Any]
    comments: tuple[str, ...] = ()
    children: tuple[tuple[str, Sequence[Item]], ...] = field(default=())  # e.g. ("tasks", [...])


def dump(data: Any) -> str:
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=WIDTH, default_flow_style=False
    )
    return text


def _printable(text: str) -> str:
    """A comment's text with every character YAML would not keep inside the comment escaped (`\\u2028`): NEL,
    LS and PS are line breaks to YAML, so a value holding one would end the comment and start YAML."""
    kept = " \t\n\r"  # textwrap makes these spaces
    return "".join(c if c.isprintable() or c in kept else c.encode("unicode_escape").decode() for c in text)


def comment_lines(texts: Iterable[str], indent: int = 0) -> list[str]:
    """`# text` lines, wrapped; an empty text is a bare `#` line."""
    pad = " " * indent
    lines = []
    for text in texts:
        wrapped = textwrap.wrap(_printable(text), WIDTH - indent - 2, subsequent_indent="  ") or [""]
        lines += [f"{pad}# {line}".rstrip() for line in wrapped]
    return lines


def items(entries: Sequence[Item], indent: int = 0) -> list[str]:
    """A YAML sequence of mappings, each with its comments and nested sequences (`tasks:`)."""
    pad = " " * indent
    lines = []
    for entry in entries:
        lines += comment_lines(entry.comments, indent)
        named = {**entry.data, "name": data(entry.data["name"])} if "name" in entry.data else entry.data
        body = dump(named).splitlines()
        lines.append(f"{pad}- {body[0]}")
        lines += [f"{pad}  {line}".rstrip() for line in body[1:]]
        for key, children in entry.children:
            lines.append(f"{pad}  {key}:")
            lines += items(children, indent + 4)
    return lines


def document(header: Sequence[str], entries: Sequence[Item]) -> str:
    return "\n".join(["---", *comment_lines(header), *items(entries)]) + "\n"
