"""Groups of steps (`steps:` on a step): where each inner step stands, and the batches of a rolling group.

A group is expanded when the plan is made, like a loop: each item of its `loop`, and each batch of its
target's hosts (`on:` + `serial:`), runs the group's steps in order, every one a unit of its own under the
group's id (`upgrade[node1]/drain`, `certs[2]/renew`). So the plan, the checklist, the journal and resume
all see plain planned steps, each carrying its `Place`: the run stops at a failed batch like at any failed
step, and a resume continues inside that batch at the failed step, with no record type of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.model import Step, Template

if TYPE_CHECKING:  # `validate` reads groups (linting) without the targets and loops of a plan
    from engine.looping import LoopItem
    from engine.targets import Host


@dataclass(frozen=True)
class Batch:
    """Some of a rolling group's target hosts, run together: the `index`-th (0-based) of `count`."""

    hosts: tuple[Host, ...]
    index: int
    count: int

    @property
    def label(self) -> str:
        """The batch in an id: its hosts' names (`node1`, `node1+node2`)."""
        return "+".join(host.name for host in self.hosts)


@dataclass(frozen=True)
class Place:
    """One run of a group's steps: the group, its loop item and its batch (each if it has one)."""

    group: Step
    item: LoopItem | None = None
    batch: Batch | None = None
    failed: frozenset[str] = field(default=frozenset(), compare=False)  # batch hosts left out (run time)

    @property
    def prefix(self) -> str:
        """The id every inner unit of this run stands under: `upgrade[2][node1]`."""
        found = self.item.suffix(self.group.id) if self.item else self.group.id
        return f"{found}[{self.batch.label}]" if self.batch else found

    @property
    def label(self) -> str:
        """How a reader tells this run from the others, after an inner step's title."""
        parts = (
            [f"{self.item.var} {self.item.index + 1}/{self.item.count}: {self.item.label}"]
            if self.item
            else []
        )
        if self.batch:
            parts.append(f"batch {self.batch.index + 1}/{self.batch.count}: {self.batch.label}")
        return "; ".join(parts)

    @property
    def whens(self) -> tuple[Template, ...]:
        return (self.group.when,) if self.group.when is not None else ()

    def vars(self) -> dict[str, Any]:
        """What inner templates read besides the runbook's names: the group's item, and `batch`."""
        found: dict[str, Any] = {self.item.var: self.item.value} if self.item else {}
        if self.batch is not None:  # the hosts still going: one that failed is not in a later step's `batch`
            found["batch"] = [host.context() for host in self.batch.hosts if host.name not in self.failed]
        return found

    def on_batch(self, step: Step) -> bool:
        """Whether an inner step runs on the batch (its target is the group's), not once per batch elsewhere."""
        return self.batch is not None and step.on == self.group.on

    def batch_hosts(self, step: Step) -> tuple[Host, ...]:
        """The batch's hosts, for an inner step on the batch (none for a step elsewhere, or no batch)."""
        return self.batch.hosts if self.batch is not None and self.on_batch(step) else ()

    @property
    def units(self) -> tuple[str, ...]:
        """What a failure in this run counts against `max_failed_hosts`: its batch's hosts, else itself."""
        return tuple(host.name for host in self.batch.hosts) if self.batch else (self.prefix,)


def batch_size(serial: int | str | None, count: int) -> int:
    """Hosts per batch: `serial` as a count, or a percentage of `count` (rounded up, at least one)."""
    if serial is None:
        return max(count, 1)
    if isinstance(serial, str):
        return max(1, math.ceil(count * int(serial.rstrip("%")) / 100))
    return serial


def batches(group: Step, hosts: tuple[Host, ...]) -> tuple[Batch | None, ...]:
    """A rolling group's batches over its target's `hosts`; `(None,)` for a group that does not roll."""
    if not group.group_on:
        return (None,)
    size = batch_size(group.serial, len(hosts))
    cut = [hosts[start : start + size] for start in range(0, len(hosts), size)]
    return tuple(Batch(part, index, len(cut)) for index, part in enumerate(cut))


def places(group: Step, items: tuple[LoopItem, ...], hosts: tuple[Host, ...]) -> Iterator[Place]:
    """Each run of a group's steps: per item of its loop (if any), per batch (if it rolls)."""
    for item in items or (None,):
        yield from (Place(group, item, batch) for batch in batches(group, hosts))


def unit(ref: str) -> str:
    """A reference to one run's step (`upgrade[node1]/drain`) as the group's step it is (`upgrade/drain`)."""
    return re.sub(r"^([a-z0-9][a-z0-9_-]*)(\[[^/\]]*\])+/", r"\1/", ref)


def flat(steps: tuple[Step, ...]) -> Iterator[tuple[Step, frozenset[str]]]:
    """Every step, each group followed by its inner steps with the names a group adds to their templates."""
    for step in steps:
        rolls = {"batch"} if step.group_on else set()  # a rolling group's `when` is decided per batch
        yield step, frozenset(rolls)
        added = rolls | ({step.loop.var} if step.loop else set())
        for inner in step.steps:
            yield inner, frozenset(added)
