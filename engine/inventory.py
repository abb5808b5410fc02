"""Inventories as data: a YAML file read at plan time, its host entries picked by `each` and `where`.

Every template of an inventory target sees the whole document as `inventory` and the current entry as
`item`, so settings written once for the whole fleet (a cluster-wide key, a jump host) can be used for
every entry. A template error names the entry it happened on, since every entry renders the same template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from engine import loading
from engine.errors import InvalidRunbook
from engine.model import Inventory
from engine.reach import text
from engine.rendering import evaluate, render, template_problem

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One host entry of the inventory, with the context its templates render in."""

    index: int
    item: Mapping[str, Any]
    address: str
    context: Mapping[str, Any]
    base: str  # the inventory's directory: relative key paths are relative to it
    name: str = ""  # what plans, summaries and the journal call it (`name:`), else its address


def entries(
    inventory: Inventory, context: Mapping[str, Any], build: Callable[[Entry], T]
) -> tuple[Any, tuple[T, ...]]:
    """The whole document, and `build(entry)` for every entry that `where` keeps; errors are located at the
    entry. The document is kept for the rules that read it (`targets.<name>.inventory`)."""
    path = Path(render(inventory.from_file, context)).expanduser()
    document = _load(inventory, path)
    items = _items(inventory, document.data, path)
    built = []
    for index, item in enumerate(items):
        scope = {**context, "inventory": document.data, "item": item}
        try:
            if inventory.where is not None and not evaluate(inventory.where, scope):
                continue
            address = _address(inventory, scope, path, index)
            name = (text(inventory.name, scope) if inventory.name else None) or address
            built.append(build(Entry(index, item, address, scope, str(path.parent), name)))
        except InvalidRunbook as error:
            prefix = f"{path}: entry {index} of {inventory.each!r}: "
            located = [
                p if p.message.startswith(str(path)) else replace(p, message=prefix + p.message)
                for p in error.problems
            ]
            raise InvalidRunbook(located) from None
    if not built:
        assert inventory.where is not None  # only `where` can leave no entry: _items refuses an empty list
        message = f"no entry of {inventory.each!r} in {str(path)!r} is kept by where: {inventory.where.text}"
        raise InvalidRunbook([template_problem(inventory.where, message)])
    return document.data, tuple(built)


def _load(inventory: Inventory, path: Path) -> loading.Document:
    try:
        return loading.load(path)
    except InvalidRunbook as error:
        if error.problems and error.problems[0].line == 0:
            shown = repr(str(path)) if path.is_absolute() else f"{str(path)!r} ({path.absolute()})"
            message = f"cannot read the inventory {shown}: {error.problems[0].message}"
            raise InvalidRunbook([template_problem(inventory.from_file, message)]) from None
        raise


def _items(inventory: Inventory, data: Any, path: Path) -> list[Any]:
    items = data
    for key in inventory.each.split("."):
        items = items.get(key) if isinstance(items, dict) else None
    if not isinstance(items, list) or not items:
        message = f"{str(path)!r} has no list at {inventory.each!r}"
        raise InvalidRunbook([template_problem(inventory.from_file, message)])
    return items


def _address(inventory: Inventory, scope: Mapping[str, Any], path: Path, index: int) -> str:
    address = text(inventory.host, scope)
    if address is None:
        message = f"{path}: entry {index} of {inventory.each!r} has no host"
        raise InvalidRunbook([template_problem(inventory.host, message)])
    return address
