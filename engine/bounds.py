"""What a template may build: text, items and integers, each bounded before it is built.

A template is code, fed with values: `{{ 'x' * 10**9 }}` or `lipsum(10**6)` took minutes and gigabytes to plan
before anyone saw a command. Every operation of the sandbox that can build more than it was given (repetition,
`+` and `~`, `**`, padding to a width, `replace`, `join`, `batch`, `slice`, `lipsum`) works out the size of
its result first and refuses one over the limit, so nothing large is ever allocated; the rendered text of a
template and the items of a loop are bounded too. The limits are far above any runbook's needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sized
from typing import Any

from jinja2.exceptions import SecurityError

MAX_TEXT = 1024 * 1024
"""Characters of a rendered template (a command, a text) and of any string a template builds."""
MAX_ITEMS = 10_000
"""Items of a list a template builds (repetition, `batch`, `slice`), and of a step's loop."""
TOO_MANY_ITEMS = f"a loop runs at most {MAX_ITEMS:,} items (MAX_ITEMS); this one has more"
MAX_INTEGER_BITS = 65_536
"""Bits of an integer `*` or `**` builds (about 20,000 digits)."""


class TooLarge(SecurityError):
    """A template would build more than a bound allows; the sandbox refuses it, located like any error."""


def _refuse(what: str, size: int, limit: int, unit: str, name: str, at_least: bool = False) -> None:
    amount = f"{'at least ' if at_least else ''}{size:,} {unit}"
    raise TooLarge(f"{what} would build {amount}; a template may build at most {limit:,} ({name})")


def text(size: int, what: str, at_least: bool = False) -> None:
    """Refuse a string of `size` characters over `MAX_TEXT` (`at_least`: it would be longer still)."""
    if size > MAX_TEXT:
        _refuse(what, size, MAX_TEXT, "characters", "MAX_TEXT", at_least)


def items(size: int, what: str) -> None:
    """Refuse a list of `size` items over `MAX_ITEMS`."""
    if size > MAX_ITEMS:
        _refuse(what, size, MAX_ITEMS, "items", "MAX_ITEMS")


def _integer(bits: int, what: str) -> None:
    if bits > MAX_INTEGER_BITS:
        _refuse(what, bits, MAX_INTEGER_BITS, "bits", "MAX_INTEGER_BITS")


def _count(value: Any) -> int | None:
    """An int operand's value (not a bool's): the side of a repetition that says how many times."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def binop(operator: str, left: Any, right: Any) -> None:
    """Before `left <operator> right`: `*` `+` `**` `%` on text, lists and integers."""
    if operator == "*":
        _times(left, right) if _count(right) is not None else _times(right, left)
    elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, type(left)):
        (text if isinstance(left, str) else items)(len(left) + len(right), "'+'")
    elif operator == "**" and _count(left) is not None and _count(right) is not None:
        if abs(left) > 1 and right > 0:
            _integer(left.bit_length() * right, "'**'")
    elif operator == "%" and isinstance(left, str):
        widths(left, right if isinstance(right, tuple) else (right,), star="*")
        shown(right)


def _times(sequence: Any, times: Any) -> None:
    count = _count(times)
    if count is None:
        return
    if isinstance(sequence, (str, bytes)):
        text(len(sequence) * count, "'*'")
    elif isinstance(sequence, (list, tuple)):
        items(len(sequence) * count, "'*'")
    elif _count(sequence) is not None:
        _integer(sequence.bit_length() + count.bit_length(), "'*'")


_NUMBER = re.compile(r"\d+")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")


def widths(form: str, arguments: Iterable[Any], star: str = "") -> None:
    """A printf-style or `str.format` form pads to the widths it names (`%9999999s`, `{:>9999999}`), or
    takes them from its arguments (`%*s`; `{:>{}}`): none may exceed `MAX_TEXT`."""
    arguments = list(arguments)
    for argument in arguments:
        shown(argument)
    for number in _NUMBER.findall(form):
        text(int(number) if len(number) <= 9 else MAX_TEXT + 1, "a width in a format")
    if (star and star in form) or (not star and _NESTED_FIELD.search(form)):
        for argument in arguments:
            if (count := _count(argument)) is not None:
                text(count, "a width in a format")


def shown(value: Any, what: str = "showing a list or mapping") -> int:
    """Before a list, tuple or mapping becomes text (`{{ xs }}`, `'%s' % xs`, `tojson`): each item shows as at
    least one character and a separator (`, `), and every character of its strings. Counted without building
    anything, and only up to the bound: `[[0] * 10000] * 10000` holds ten thousand references to one list and
    would show 10**8 items. Returns the count (the characters it shows at least)."""
    count, waiting = 0, [value]
    while waiting:
        item = waiting.pop()
        if isinstance(item, (str, bytes)):
            count += len(item)
        elif isinstance(item, (list, tuple, dict)):
            count += 3 * len(item)
            text(count, what, at_least=True)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            waiting += [child for child in children if isinstance(child, (str, bytes, list, tuple, dict))]
        text(count, what, at_least=True)
    return count


def joined(parts: Iterable[Any], separator: str = "", what: str = "joining") -> list[str]:
    """The parts of a `join`, a `~` or a rendered text as strings, refused as soon as their total passes
    `MAX_TEXT`."""
    found: list[str] = []
    size = 0
    for part in parts:
        found.append(str(part))
        size += len(found[-1]) + len(separator)
        text(size, what, at_least=True)  # the parts after this one are not read
    return found


def replaced(value: str, old: str, new: str, count: int | None = None) -> None:
    """Before `value.replace(old, new)`: the text it gives, from the number of occurrences."""
    hits = value.count(old) if old else len(value) + 1
    hits = min(hits, count) if count is not None and count >= 0 else hits
    text(len(value) + hits * (len(new) - len(old)), "'replace'")


def padded(value: Sized, width: Any) -> None:
    """Before padding `value` to `width` (`center`, `ljust`, `rjust`, `zfill`)."""
    if (count := _count(width)) is not None:
        text(max(len(value), count), "padding")
