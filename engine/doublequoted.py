"""`echo "a={{ app }}"`: a value inside a quoted shell string, found when the runbook is validated.

Every `{{ }}` in a command is quoted for the shell already (`my app` becomes `'my app'`), so inside double
quotes those quotes are text: `echo "a={{ app }}"` prints `a='my app'`, and a secret (`"${RUNBOOK_SECRET_…}"`)
would end up outside any quotes; inside single quotes (`'{{ app }}'`) the value's own quotes end them, and
the value is split into words. Validate warns and says how to write it: without the double quotes
(`a={{ app }}` is one word all the same). A value marked `| raw` is the author's shell text and is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.programs import without_here_documents

_TEMPLATE_PART = re.compile(r"\{\{(.*?)\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_RAW = re.compile(r"\|\s*raw\s*-?$")
_MARK = re.compile(r"\x01(\d+)\x02")


def found(text: str) -> Iterator[tuple[int, str]]:
    """(line in the template, expression) of each value that stands inside quotes."""
    expressions: list[tuple[int, str]] = []

    def mark(match: re.Match[str]) -> str:
        if match.group(1) is None:  # a statement or a comment: no text of its own in the command
            return ""
        expressions.append((text.count("\n", 0, match.start()) + 1, match.group(1).strip(" -\n")))
        return f"\x01{len(expressions) - 1}\x02"

    script = without_here_documents(_TEMPLATE_PART.sub(mark, text))  # a here-document's quotes are text
    for index in _double_quoted(script):
        line, expression = expressions[index]
        if not _RAW.search(expression):
            yield line, expression


def _double_quoted(script: str) -> Iterator[int]:
    """The marks that stand inside quotes, in the shell's sense: not escaped, not inside a `$( )` opened
    within double quotes (which starts a new quoting context)."""
    stack = [""]  # "" or "(": unquoted (top level, or in a command substitution); '"' or "'": quoted
    i = 0
    while i < len(script):
        c, where = script[i], stack[-1]
        if where == "'":
            if c == "'":
                stack.pop()
            elif mark := _MARK.match(script, i):  # single quotes: the value's own quotes end them
                yield int(mark.group(1))
        elif c == "\\":
            i += 1
        elif script.startswith("$(", i):
            stack.append("(")
            i += 1
        elif where == '"' and c == '"':
            stack.pop()
        elif where == '"' and (mark := _MARK.match(script, i)):
            yield int(mark.group(1))
        elif where != '"' and c in "'\"":
            stack.append(c)
        elif where == "(" and c == ")":
            stack.pop()
        i += 1
