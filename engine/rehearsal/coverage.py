"""Coverage of a rehearsal: the paths of the runbook it never took, which a reviewer should ask about.

Steps never reached, `when` branches never taken (either way), `until` conditions that never had to wait,
retries, `continue_on_error` and `max_failed_hosts` never triggered, and the commands no scenario rule
answered. Read from the plan, the run's last outcome per step and host, and the stage's log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.history import Attempt
from engine.outcomes import Status
from engine.planning import PlannedStep
from engine.rehearsal.stage import UNSCRIPTED, Call


@dataclass(frozen=True)
class Coverage:
    never_reached: tuple[str, ...]
    when_never: tuple[str, ...]  # "step: when … never true" / "never false"
    until_never_waited: tuple[str, ...]
    retries_never: tuple[str, ...]
    handlers_never: tuple[str, ...]
    unscripted: tuple[str, ...]  # "step @ host: command"

    def sections(self) -> list[tuple[str, tuple[str, ...]]]:
        return [
            ("Steps never reached", self.never_reached),
            ("`when` branches never taken", self.when_never),
            ("`until` conditions that never had to wait", self.until_never_waited),
            ("Retries never triggered", self.retries_never),
            ("Failure handlers never triggered", self.handlers_never),
            ("Unscripted commands (succeeded with empty output)", self.unscripted),
        ]


def measure(
    steps: Iterable[PlannedStep], outcomes: Mapping[tuple[str, str], Attempt], calls: Iterable[Call]
) -> Coverage:
    found: dict[str, list[str]] = {key: [] for key in ("reach", "when", "until", "retries", "handlers")}
    for planned in steps:
        mine = [o for (step, _), o in outcomes.items() if step == planned.id]
        if not mine:
            found["reach"].append(f"{planned.id}: {planned.title}")
            continue
        _judge(planned, mine, found)
    unscripted = [
        f"{c.step or 'check'} @ {c.host}: {c.command.strip().splitlines()[0] if c.command.strip() else ''}"
        for c in calls
        if c.source == UNSCRIPTED
    ]
    return Coverage(
        tuple(found["reach"]),
        tuple(found["when"]),
        tuple(found["until"]),
        tuple(found["retries"]),
        tuple(found["handlers"]),
        tuple(dict.fromkeys(unscripted)),
    )


def _judge(planned: PlannedStep, mine: list[Attempt], found: dict[str, list[str]]) -> None:
    step, name = planned.step, planned.id
    ran = [o for o in mine if o.status not in (Status.SKIPPED, Status.DONE_BEFORE)]
    if step.when is not None:
        skipped = any(o.status is Status.SKIPPED for o in mine)
        if not ran:
            found["when"].append(f"{name}: `when: {step.when.text}` was never true")
        elif not skipped:
            found["when"].append(f"{name}: `when: {step.when.text}` was never false")
    waited = any(o.attempt > 1 for o in ran)
    if step.until is not None and ran and not waited:
        found["until"].append(f"{name}: `until: {step.until.text}` held at the first attempt")
    elif step.until is None and step.retries.count and ran and not waited:
        found["retries"].append(f"{name}: retries {step.retries.count}, never needed")
    failed = any(o.status.failed for o in ran)  # an unknown outcome counts
    if step.continue_on_error and not failed:
        found["handlers"].append(f"{name}: continue_on_error, never used (no host failed)")
    if step.max_failed_hosts and not failed:
        found["handlers"].append(
            f"{name}: max_failed_hosts {step.max_failed_hosts}, never tolerated a failure"
        )
