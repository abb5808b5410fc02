"""The plan: every step, per host, the exact command, cwd, timeout, confirmations and manual texts.

One plan object feeds the dry run, the checklist and the runner, so what an operator reviews is what
runs. Where a platform is not known yet (an SSH host before preflight, or a checklist printed for any
machine) a step keeps every variant of its command; the runner picks one per host once it knows.

The plan is plain values, finished when it is handed over: `engine.planner` builds it, and what can only be
rendered during the run goes through the one port the plan provides (`StepRenderer`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.approvals.planned import PlannedApproval
from engine.grouping import Place
from engine.looping import LoopItem
from engine.masking import MASK
from engine.model import Runbook, Step, Template
from engine.rendering import Deferred
from engine.targets import Host, ResolvedTarget
from engine.transports import Transport
from engine.variables import Values

PLATFORM_LABELS = {"linux": "Linux", "darwin": "macOS", "windows": "Windows", "default": "Other", "*": ""}


class Blank(Deferred):
    """A required value not given (checklists): printed as a line to fill in by hand."""

    def __str__(self) -> str:
        return "________"


@dataclass(frozen=True)
class Variant:
    """One form of a command: for one platform, or `*` for all."""

    platform: str
    script: str
    secret_env: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return PLATFORM_LABELS.get(self.platform, self.platform)


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What a planned step is rendered with, carried by the step itself (plain values, nothing live): its
    runbook, values, platform and targets; for a used runbook's step, the using step's id (`name`:
    `snapshot`) and number. The plan's `renderer` renders a deferred step again from it."""

    runbook: Runbook = field(repr=False)
    values: Values = field(repr=False)  # never in a repr: it holds the secrets' values
    platform: str | None
    targets: Mapping[str, ResolvedTarget] = field(repr=False)
    name: str = ""
    number: int | None = None
    paper: bool = False  # a checklist's: what a step prints is a blank naming the step to read it from
    skip: str | None = None  # a used runbook's, when the step using it has a false `when`

    def scoped(self, name: str) -> str:
        """A name of this runbook as the whole plan knows it: under the using step's id, if used."""
        return f"{self.name}/{name}" if self.name else name


@dataclass(frozen=True)
class HostPlan:
    host: Host
    variants: tuple[Variant, ...]
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    skip: str | None = None
    deferred: bool = False
    secret_env: tuple[tuple[str, str], ...] = ()  # (variable of the command, RUNBOOK_SECRET_… it takes)
    result: str | None = None  # the step's `result` as this host's reader sees it (before the run)

    def shown_env(self) -> tuple[tuple[str, str], ...]:
        """The command's extra environment as printed: secrets masked, never their value."""
        return self.env + tuple((name, MASK) for name, _ in self.secret_env)

    def variant(self, platform: str) -> Variant | None:
        table = {v.platform: v for v in self.variants}
        return table.get(platform) or table.get("default") or table.get("*")


@dataclass(frozen=True)
class PlannedStep:
    number: int
    step: Step
    target: str
    hosts: tuple[HostPlan, ...]
    concurrency: int
    programs: tuple[str, ...] = ()
    manual: str | None = None
    record_expect: str | None = None
    confirm_text: str | None = None
    confirm_question: str | None = None
    record_prompt: str | None = None
    result: str | None = None
    approval: PlannedApproval | None = None  # `approval:`, its number rendered
    texts_deferred: bool = False  # a text the operator reads needs an earlier step's output
    item: LoopItem | None = None  # one item of the step's loop: a unit of its own
    scope: Scope = field(kw_only=True)  # what it is rendered with; a used runbook's: under the using step
    place: Place | None = field(default=None, kw_only=True)  # a group's step: which item and batch
    skip: str | None = field(default=None, kw_only=True)  # a manual step's false `when`

    @property
    def id(self) -> str:
        """The unit's id: the step's, with the item's number for a loop (`rotate[2]`), under the group's
        run (`upgrade[node1]/drain`) and the using step's id for a used runbook's step (`snapshot/save`)."""
        unit = self.item.suffix(self.step.id) if self.item else self.step.id
        return self.scope.scoped(f"{self.place.prefix}/{unit}" if self.place else unit)

    @property
    def label(self) -> str:
        """The number a reader finds the step by: `5`, or `5.2` for a group's second step."""
        return f"{self.number}.{self.step.index + 1}" if self.place else str(self.number)

    @property
    def title(self) -> str:
        item = self.item
        shown = [f"{item.var} {item.index + 1}/{item.count}: {item.label}"] if item else []
        shown += [self.place.label] if self.place and self.place.label else []
        return f"{self.step.title} ({'; '.join(shown)})" if shown else self.step.title

    @property
    def deferred(self) -> bool:
        """Rendered again when the step is reached, with the outputs of the steps before it."""
        return self.texts_deferred or any(h.deferred for h in self.hosts)

    def results(self) -> tuple[tuple[str, str], ...]:
        """`result` per host, when it says something else on each host (else the step's one `result`)."""
        found = tuple((h.host.name, h.result) for h in self.shown_hosts if h.result is not None)
        return found if len({text for _, text in found}) > 1 else ()

    @property
    def on_batch(self) -> bool:
        """A rolling group's step on the batch's hosts (not once per batch elsewhere)."""
        return self.place is not None and self.place.on_batch(self.step)

    @property
    def fan_out(self) -> bool:
        return len(self.hosts) > 1 or any(h.host.transport is not Transport.LOCAL for h in self.hosts)

    @property
    def shown_hosts(self) -> tuple[HostPlan, ...]:
        """The hosts a reader sees: for `run_once`, the one it will run on unless that host is left out."""
        if not self.step.run_once or not self.hosts:
            return self.hosts
        return (next((h for h in self.hosts if not h.skip), self.hosts[0]),)


@dataclass(frozen=True)
class PlannedCheck:
    title: str
    target: str
    hosts: tuple[HostPlan, ...]
    timeout: float
    only_before_start: bool = False


@dataclass(frozen=True)
class UsedFile:
    """A runbook used by a step (`use:`): which step, the file, and the sha256 it had when planned."""

    step: str
    path: str
    sha256: str


class StepRenderer(Protocol):
    """The narrow port through which the runner renders what waits for the run: a deferred step with the
    outputs and platforms known by then, a text the operator reads (`result`), the values an `until` reads.
    The plan provides it (`Plan.renderer`), so nothing that executes a plan holds a planner."""

    def step(
        self, planned: PlannedStep, steps: Mapping[str, Any], platforms: Mapping[str, str]
    ) -> PlannedStep: ...

    def text(
        self, planned: PlannedStep, template: Template, steps: Mapping[str, Any], host: Host | None = None
    ) -> str: ...

    def context(
        self, planned: PlannedStep, host: Host, platform: str | None, steps: Mapping[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Plan:
    runbook: Runbook
    values: Values
    platform: str | None
    targets: Mapping[str, ResolvedTarget]  # a used runbook's under the using step's id: `snapshot/local`
    checks: tuple[PlannedCheck, ...]
    steps: tuple[PlannedStep, ...]
    renderer: StepRenderer = field(compare=False, repr=False)
    warnings: tuple[str, ...] = ()  # the runbook's, then each used runbook's
    uses: tuple[UsedFile, ...] = ()

    def step(self, step_id: str) -> PlannedStep | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def remote_hosts(self) -> tuple[Host, ...]:
        """Every host reached over a connection (not this machine), once per name: a name is one account
        reached one way (`targets` refuses a plan where it is not), so one connection serves all its steps."""
        seen: dict[str, Host] = {}
        for target in self.targets.values():
            for host in target.hosts:
                if host.transport is not Transport.LOCAL:
                    seen.setdefault(host.name, host)
        return tuple(seen.values())


def operator_texts(step: Step) -> tuple[Template, ...]:
    """Every template of a step that a person reads while it runs (rendered again then, if need be)."""
    confirm, record = step.confirm, step.record
    found = (
        step.manual,
        step.result,
        confirm.question if confirm else None,
        confirm.typed if confirm else None,
        record.prompt if record else None,
        record.equals if record else None,
    )
    return tuple(t for t in found if t is not None)


def sha256_text(text: str) -> str:
    """The sha256 of a text (a runbook as read, a plan's reviewable form), as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
