"""What a failure inside a group means for the steps after it (beside the runner, which only executes).

A group's runs (`grouping.Place`: an item, a batch) are plain planned steps, so by default a failure stops the
run at its batch like any failed step: later batches are untouched, and a resume continues at the failed
step. With the group's `max_failed_hosts`, failures are counted across the whole group (a batch host that
failed, or a run with no batch), and the roll goes on while they stay within it; what failed is linked to
the units that stand for it, so the rest of its run does not run for it:

- a batch host that failed is left out of every later step (like a step's own `max_failed_hosts`), and
  out of `batch` in its batch's later steps, so no later step "uncordons" a node that was never upgraded;
- a step once per batch elsewhere (`on: local`) that failed counts every host of its batch as failed, and
  the rest of that batch's run is left out (as is the rest of an item's run that failed, for a loop group).
Left out is not journaled: a resume runs it once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.outcomes import Status, StepOutcome
from engine.planning import PlannedStep, StepRenderer
from engine.records import OPERATOR


class Roll:
    """The failures of each group in one run, and the runs (item, batch) they broke off."""

    def __init__(self) -> None:
        self.failed_hosts: dict[str, str] = {}  # host → the step it failed in (tolerated): left out after
        self.failed: dict[str, set[str]] = {}  # a group (its scoped id) → its failed units
        self.broken: dict[str, str] = {}  # a group's run (its scoped prefix) → the step it broke off in

    def rendered(
        self,
        renderer: StepRenderer,
        planned: PlannedStep,
        steps: Mapping[str, Any],
        platforms: Mapping[str, str],
    ) -> PlannedStep:
        """The step as it runs now: rendered again if it reads earlier outputs, or if a host of its batch
        failed (tolerated), so that `batch` in its templates lists only the hosts still going."""
        place, failed = planned.place, frozenset[str]()
        if place and place.batch and planned.scope.scoped(place.prefix) not in self.broken:  # else left out
            failed = frozenset(h.name for h in place.batch.hosts if h.name in self.failed_hosts)
        if place is not None and failed:
            planned = replace(planned, place=replace(place, failed=failed))
        return renderer.step(planned, steps, platforms) if planned.deferred or failed else planned

    def left_out(self, planned: PlannedStep) -> Mapping[str, str]:
        """The hosts left out of `planned` (each → the step it failed in): those that failed earlier, and
        every one of its hosts (or its operator) when its group's run broke off."""
        place, failed_hosts = planned.place, self.failed_hosts
        broke = self.broken.get(planned.scope.scoped(place.prefix)) if place else None
        if broke is None:
            return failed_hosts
        names = [h.host.name for h in planned.hosts] or [OPERATOR]
        return {**failed_hosts, **dict.fromkeys(names, broke)}

    def judged(self, planned: PlannedStep, outcome: StepOutcome, note: str) -> tuple[StepOutcome, str]:
        """The step's outcome as its group sees it (whether the run stops) and the note to show; the hosts
        left out from now on are added to `failed_hosts`."""
        place, failed_hosts = planned.place, self.failed_hosts
        if not outcome.failed_hosts or planned.step.continue_on_error:  # continue_on_error: hosts go on
            return outcome, note
        if place is None:
            for host in outcome.failed_hosts:
                failed_hosts.setdefault(host, planned.id)
            return outcome, note
        units = outcome.failed_hosts if planned.on_batch else place.units
        failed = self.failed.setdefault(planned.scope.scoped(place.group.id), set())
        failed.update(units)
        for host in units if place.batch else ():
            failed_hosts.setdefault(host, planned.id)
        if not planned.on_batch or set(place.units) <= failed:
            self.broken[planned.scope.scoped(place.prefix)] = planned.id
        broken_off = any(h.status in (Status.INTERRUPTED, Status.UNKNOWN) for h in outcome.hosts)
        allowed = place.group.max_failed_hosts
        if not outcome.stopped or broken_off or len(failed) > allowed:
            return outcome, note
        note = (
            f"{len(failed)} failed in group {place.group.id}, within its max_failed_hosts={allowed}: "
            f"the rest of {place.prefix} is left out for {', '.join(units)}"
        )
        return replace(outcome, stopped=False), note
