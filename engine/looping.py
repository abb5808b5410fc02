"""`loop:` on a step: the items, known before the run, each a unit of its own.

Every item becomes its own planned step (`rotate[2]`), so it has its own result, journal records, retries
and resume: if the second certificate fails, a resume starts at the second, not again at the first. The
items must be known when the plan is made (a list, or an expression over the values), so that the plan
and the checklist can list them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import bounds
from engine.errors import InvalidRunbook
from engine.model import Step
from engine.rendering import evaluate, template_problem


@dataclass(frozen=True)
class LoopItem:
    var: str
    value: Any
    index: int  # 0-based
    count: int

    @property
    def label(self) -> str:
        """The item as a reader sees it: the value itself when short."""
        text = self.value if isinstance(self.value, str) else json.dumps(self.value, ensure_ascii=False)
        return text if len(text) <= 40 else text[:37] + "..."

    def suffix(self, step_id: str) -> str:
        return f"{step_id}[{self.index + 1}]"


def items(step: Step, context: Mapping[str, Any]) -> tuple[LoopItem, ...]:
    """The step's items (empty tuple: the step has no loop); an expression must give a list."""
    loop = step.loop
    if loop is None:
        return ()
    values: Any = loop.items
    if loop.expression is not None:
        values = evaluate(loop.expression, context)
        if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
            message = f"loop must give a list, got {type(values).__name__}: {values!r}"
            raise InvalidRunbook([template_problem(loop.expression, message)])
        values = list(itertools.islice(values, bounds.MAX_ITEMS + 1))  # a list literal: checked by building
        if len(values) > bounds.MAX_ITEMS:
            raise InvalidRunbook([template_problem(loop.expression, bounds.TOO_MANY_ITEMS)])
    return tuple(LoopItem(loop.var, value, i, len(values)) for i, value in enumerate(values))
