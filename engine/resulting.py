"""A step's `result` once it ran: what the operator is told it should see, on each host it ran on.

On a step of several hosts the text is rendered per host (issue 23, bug 4: it was the first host's for
all): with that host as `host`, and the step's own output (`steps.<id>`) that host's, so
`"{{ host.name }} runs {{ steps.version.stdout }}"` says each node's own version. One line when every
host says the same. Rendered when the host's attempt went well and kept in its outcome, so the journal's
`step-end` has it (and a resume says it again for a step done before).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.errors import InvalidRunbook
from engine.outcomes import HostOutcome, Status, StepOutcome
from engine.planning import PlannedStep, StepRenderer
from engine.targets import Host


def kept(
    renderer: StepRenderer,
    planned: PlannedStep,
    outcome: HostOutcome,
    host: Host,
    steps: Mapping[str, Any],
    mask: Callable[[str], str],
) -> HostOutcome:
    """The host's outcome with its result as said (masked), kept in the journal's `step-end`: when it went
    well; not when the result cannot be rendered yet (`said` renders it again after the step, and says why)."""
    template = planned.step.result
    if template is None or outcome.status is not Status.OK:
        return outcome
    try:
        said = renderer.text(planned, template, _own(steps, planned, outcome), host)
    except InvalidRunbook:
        return outcome
    return replace(outcome, result=mask(said))


def said(
    renderer: StepRenderer, planned: PlannedStep, outcome: StepOutcome, steps: Mapping[str, Any]
) -> list[str]:
    """The lines to print after the step (none unless it has a `result` and went well)."""
    template = planned.step.result
    if template is None or outcome.status is not Status.OK:
        return []
    ran = {o.host: o for o in outcome.hosts if o.status in (Status.OK, Status.DONE_BEFORE)}
    if len(planned.hosts) <= 1:
        kept = next((o.result for o in ran.values() if o.result), None)
        return [f"  result: {kept or renderer.text(planned, template, steps)}"]
    found = [
        (
            h.host.name,
            ran[h.host.name].result
            or renderer.text(planned, template, _own(steps, planned, ran[h.host.name]), h.host),
        )
        for h in planned.hosts
        if h.host.name in ran
    ]
    if len({text for _, text in found}) == 1:
        return [f"  result: {found[0][1]}"]
    return [f"  result on {host}: {text}" for host, text in found]


def _own(steps: Mapping[str, Any], planned: PlannedStep, outcome: HostOutcome) -> dict[str, Any]:
    """`steps.` as one host's result reads it: the step's own output is that host's."""
    known = dict(steps.get(planned.step.id, {}))
    known.update(stdout=outcome.stdout, stderr=outcome.stderr, exit_code=outcome.exit_code)
    return {**steps, planned.step.id: known}
