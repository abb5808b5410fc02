"""What `steps.` holds for a run's templates: each step's outcome once it ran, learnt as the run goes.

A used runbook's step is `steps.save` in it and `steps['snapshot/save']` in the runbook using it; a group's
step is `steps.drain` (its latest run's) and `steps['upgrade[node1]/drain']`; a loop's is its last item's,
with every item's in `items`.
"""

from __future__ import annotations

from typing import Any

from engine.outcomes import StepOutcome
from engine.planning import PlannedStep


class Known:
    """The outcomes so far, per runbook scope (`""` is the runbook run; a used one's is its step's path)."""

    def __init__(self) -> None:
        self.scopes: dict[str, dict[str, Any]] = {"": {}}

    def learn(self, planned: PlannedStep, outcome: StepOutcome) -> None:
        """`steps.<id>` for later templates; a loop's is its last item's, with every item's in `items`."""
        known = outcome.context()
        if planned.item is not None:
            items = [*self.of(planned).get(planned.step.id, {}).get("items", ()), known]
            known = {**known, "items": items}
        # a used runbook's step is `steps.save` in it, `steps['snapshot/save']` in the runbook using it; a
        # group's step is `steps.drain` (its latest run's) and `steps['upgrade[node1]/drain']`
        scope, place = planned.scope.name, planned.place
        parts = [*scope.split("/"), *([place.prefix] if place else []), planned.step.id]
        for cut in range(len(parts)):
            self.scopes.setdefault("/".join(parts[:cut]), {})["/".join(parts[cut:])] = known
        self.of(planned)[planned.step.id] = known

    def of(self, planned: PlannedStep) -> dict[str, Any]:
        """What `steps.` holds for this step's templates: its own runbook's steps that ran."""
        return self.scopes.setdefault(planned.scope.name, {})
