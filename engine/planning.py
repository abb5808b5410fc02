"""The plan: every step, per host, the exact command, cwd, timeout, confirmations and manual texts.

One plan object feeds the dry run, the checklist and the runner, so what an operator reviews is what
runs. Where a platform is not known yet (an SSH host before preflight, or a checklist printed for any
machine) a step keeps every variant of its command; the runner picks one per host once it knows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import looping, model, programs, using
from engine.errors import InvalidRunbook, Problem
from engine.looping import LoopItem
from engine.masking import MASK
from engine.model import Command, Runbook, Step, Template
from engine.rendering import (
    Deferred,
    SecretRef,
    evaluate,
    names_used,
    render,
    secrets_in,
    template_problem,
    whole_reference,
)
from engine.targets import LOCAL_HOST, Host, ResolvedTarget
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


@dataclass(frozen=True)
class HostPlan:
    host: Host
    variants: tuple[Variant, ...]
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    skip: str | None = None
    deferred: bool = False
    secret_env: tuple[tuple[str, str], ...] = ()  # (variable of the command, RUNBOOK_SECRET_… it takes)

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
    texts_deferred: bool = False  # a text the operator reads needs an earlier step's output
    item: LoopItem | None = None  # one item of the step's loop: a unit of its own
    scope: str = ""  # a used runbook's step: the using step's id (`snapshot`)
    planner: Planner | None = field(default=None, compare=False, repr=False)  # a used runbook's own

    @property
    def id(self) -> str:
        """The unit's id: the step's, with the item's number for a loop (`rotate[2]`), under the using
        step's id for a used runbook's step (`snapshot/save`)."""
        unit = self.item.suffix(self.step.id) if self.item else self.step.id
        return f"{self.scope}/{unit}" if self.scope else unit

    @property
    def title(self) -> str:
        item = self.item
        return (
            f"{self.step.title} ({item.var} {item.index + 1}/{item.count}: {item.label})"
            if item
            else self.step.title
        )

    @property
    def deferred(self) -> bool:
        """Rendered again when the step is reached, with the outputs of the steps before it."""
        return self.texts_deferred or any(h.deferred for h in self.hosts)

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


@dataclass(frozen=True)
class UsedFile:
    """A runbook used by a step (`use:`): which step, the file, and the sha256 it had when planned."""

    step: str
    path: str
    sha256: str


@dataclass(frozen=True)
class Plan:
    runbook: Runbook
    values: Values
    platform: str | None
    targets: Mapping[str, ResolvedTarget]  # a used runbook's under the using step's id: `snapshot/local`
    checks: tuple[PlannedCheck, ...]
    steps: tuple[PlannedStep, ...]
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


class Planner:
    """Renders steps for hosts. Used once for the whole plan, and again by the runner for deferred steps."""

    def __init__(
        self,
        runbook: Runbook,
        values: Values,
        platform: str | None,
        targets: Mapping[str, ResolvedTarget],
        scope: str = "",
        number: int | None = None,
        paper: bool = False,
    ) -> None:
        self.runbook, self.values, self.platform, self.targets = runbook, values, platform, targets
        self.scope, self.number = scope, number  # a used runbook's: the using step's id and number
        self.paper = paper
        numbers = {unit: self.number or s.index + 1 for s in runbook.steps for unit in using.unit_ids(s)}
        # what `steps.` is before the run: a placeholder, or on paper a blank naming the step to read it from
        self.unknown_steps = Deferred("steps", numbers if paper else None)
        self.secret_refs = {name: SecretRef(name) for name in values.secrets}
        base: dict[str, Any] = {name: Blank(name) for name in values.missing}
        base.update(values.values)
        base.update(self.secret_refs)
        base["runbook"] = {"name": runbook.name, "version": runbook.version}
        self.base = base

    def context(
        self, host: Host, platform: str | None, steps: Any, item: LoopItem | None = None
    ) -> dict[str, Any]:
        if not isinstance(steps, Deferred):  # the run's: typed only then (a plan does not import `results`)
            from engine import results

            steps = results.steps(steps)
        found = {
            **self.base,
            "platform": platform or Deferred("platform"),
            "host": host.context(),
            "steps": steps,
        }
        if item is not None:
            found[item.var] = item.value
        return found

    def condition(self, when: Template, context: Mapping[str, Any]) -> Any:
        """A `when`, evaluated with the real values of secrets (a condition prints nothing); an error about
        it is masked, since an exception's message may quote a value it read."""
        secrets = {name: self.values.values[name] for name in self.secret_refs}
        return evaluate(when, {**context, **secrets}, hidden=(str(value) for value in secrets.values()))

    def host_platform(self, host: Host) -> str | None:
        return self.platform if host.transport is Transport.LOCAL else None

    def scoped(self, name: str) -> str:
        """A name of this runbook as the whole plan knows it: under the using step's id, if used."""
        return f"{self.scope}/{name}" if self.scope else name

    def plan_use(self, step: Step, allow_missing: bool) -> Plan:
        """The plan of the runbook a step uses, its values from `with:`, under the step's id."""
        assert step.use is not None and step.use.runbook is not None
        context = self.context(LOCAL_HOST, self.platform, self.unknown_steps)
        values, targets = using.used_values(self.runbook, step, context, allow_missing)
        number = self.number or step.index + 1
        scope = self.scoped(step.id)
        used = step.use.runbook
        return build_plan(used, values, self.platform, targets, scope, number, allow_missing, self.paper)

    def plan_loop(self, step: Step) -> tuple[PlannedStep, ...]:
        """The step once, or once per item of its loop (each its own unit: `rotate[1]`, `rotate[2]`…)."""
        if step.loop is None:
            return (self.plan_step(step),)
        context = self.context(self.targets[step.on].hosts[0], self.platform, self.unknown_steps)
        return tuple(self.plan_step(step, item=item) for item in looping.items(step, context))

    def plan_step(
        self,
        step: Step,
        steps: Any = None,
        platforms: Mapping[str, str] | None = None,
        item: LoopItem | None = None,
    ) -> PlannedStep:
        """Render `step` for each host of its target; `steps`/`platforms` are the run's knowledge, if any."""
        steps = steps if steps is not None else self.unknown_steps
        target = self.targets[step.on]
        deferred = step.run is not None and any("steps" in names_used(t.text) for _, t in step.run.variants)
        # A command that does not mention `host` is the same on every host of a platform: render it once.
        memo: dict[str | None, _Rendered] | None = None if _uses_host(step) else {}
        hosts = tuple(
            self._host_plan(step, host, steps, platforms, deferred, memo, item)
            for host in (target.hosts if step.run else ())
        )
        first = self.context(target.hosts[0], self.platform, steps, item)

        def text(template: Template | None) -> str | None:
            return render(template, first) if template is not None else None

        confirm, record = step.confirm, step.record
        return PlannedStep(
            number=self.number or step.index + 1,
            step=step,
            target=self.scoped(step.on),
            hosts=hosts,
            concurrency=step.concurrency or target.concurrency,
            programs=programs.needed(step.run, step.requires),
            manual=text(step.manual),
            record_expect=text(record.equals) if record else None,
            confirm_text=text(confirm.typed) if confirm else None,
            confirm_question=(text(confirm.question) or default_question(step)) if confirm else None,
            record_prompt=text(record.prompt) if record else None,
            result=text(step.result) if isinstance(steps, Deferred) else None,  # the runner's, after it
            texts_deferred=isinstance(steps, Deferred)
            and any("steps" in names_used(t.text) for t in operator_texts(step)),
            item=item,
            scope=self.scope,
            planner=self if self.scope else None,
        )

    def text(self, planned: PlannedStep, template: Template, steps: Any) -> str:
        """A text the operator reads (a step's `result`), rendered with what is known now."""
        host = self.targets[planned.step.on].hosts[0]
        return render(template, self.context(host, self.platform, steps, planned.item))

    def _host_plan(
        self,
        step: Step,
        host: Host,
        steps: Any,
        platforms: Mapping[str, str] | None,
        deferred: bool,
        memo: dict[str | None, _Rendered] | None,
        item: LoopItem | None = None,
    ) -> HostPlan:
        platform = (platforms or {}).get(host.name) or self.host_platform(host)
        context = self.context(host, platform, steps, item)
        deferred = deferred and isinstance(steps, Deferred)
        skip = None
        if step.when is not None:
            unknown = names_used("{{" + step.when.text + "}}")
            if ("steps" in unknown and isinstance(steps, Deferred)) or (
                "platform" in unknown and platform is None
            ):
                deferred = True
            elif not self.condition(step.when, context):
                skip = f"when: {step.when.text} is false"  # the expression, never the values it read
        if skip is not None:  # not rendered: a false `when` may guard values the command needs
            return HostPlan(host=host, variants=(), skip=skip)
        rendered = memo.get(platform) if memo is not None else None
        if rendered is None:
            assert step.run is not None
            env, secret_env = self._env(step, context)
            rendered = _Rendered(
                self.variants(step.run, context, platform),
                render(step.cwd, context) if step.cwd else None,
                env,
                secret_env,
            )
            if memo is not None:
                memo[platform] = rendered
        return HostPlan(
            host=host,
            variants=rendered.variants,
            cwd=rendered.cwd,
            env=rendered.env,
            skip=skip,
            deferred=deferred,
            secret_env=rendered.secret_env,
        )

    def _env(
        self, step: Step, context: dict[str, Any]
    ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """Plain `env:` values, and those that are exactly a secret (passed the way secrets are)."""
        plain, secret = [], []
        for name, template in step.env:
            ref = self.secret_refs.get(whole_reference(template.text) or "")
            if ref is not None:
                secret.append((name, ref.env))
            else:
                plain.append((name, render(template, context)))
        return tuple(plain), tuple(secret)

    def variants(
        self, command: Command, context: dict[str, Any], platform: str | None
    ) -> tuple[Variant, ...]:
        """The command's form(s) for a platform, or every form when the platform is not known."""
        if platform is not None:
            template = command.for_platform(platform)
            if template is None:
                raise InvalidRunbook(
                    [
                        template_problem(
                            command.variants[0][1],
                            f"no command for platform {platform!r}: add '{platform}' or 'default'",
                        )
                    ]
                )
            chosen = [(platform if command.per_platform else "*", template)]
        else:
            chosen = list(command.variants)
        return tuple(self._variant(name, template, context) for name, template in chosen)

    def _variant(self, name: str, template: Template, context: dict[str, Any]) -> Variant:
        if name in model.PLATFORMS:
            context = {**context, "platform": name}
        script = render(template, context, shell=True)
        return Variant(name, script, secrets_in(script, self.secret_refs))

    def plan_check(self, check: model.Check) -> PlannedCheck:
        target = self.targets[check.on]
        hosts = []
        for host in target.hosts:
            platform = self.host_platform(host)
            context = self.context(host, platform, self.unknown_steps)
            hosts.append(
                HostPlan(
                    host,
                    self.variants(check.run, context, platform),
                    cwd=render(check.cwd, context) if check.cwd else None,
                )
            )
        title = f"({self.scope}) {check.title}" if self.scope else check.title
        return PlannedCheck(title, self.scoped(check.on), tuple(hosts), check.timeout)


@dataclass(frozen=True)
class _Rendered:
    """What a step renders to on one platform when its templates do not mention `host` (shared by its hosts)."""

    variants: tuple[Variant, ...]
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[tuple[str, str], ...]


def default_question(step: Step) -> str:
    """The engine's own question, for `confirm: true` or a `{type: …}` without a question."""
    if step.confirm is not None and step.confirm.typed is not None:
        return f"Type the text below to run step {step.id!r}"
    return f"Run step {step.id!r} ({step.title})?"


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


def _uses_host(step: Step) -> bool:
    templates = [t for _, t in step.run.variants] if step.run else []
    templates += [step.cwd] if step.cwd else []
    templates += [t for _, t in step.env]
    return any("host" in names_used(t.text) for t in templates)


def build_plan(
    runbook: Runbook,
    values: Values,
    platform: str | None,
    targets: Mapping[str, ResolvedTarget],
    scope: str = "",
    number: int | None = None,
    allow_missing: bool = False,
    paper: bool = False,
) -> Plan:
    """The whole plan; every render problem of every step is raised together.

    A step that uses another runbook adds that runbook's plan in its place: its warnings, checks, targets
    and steps, under the step's id (`scope`).
    """
    planner = Planner(runbook, values, platform, targets, scope, number, paper)
    problems: list[Problem] = []
    steps: list[PlannedStep] = []
    checks: list[PlannedCheck] = []
    warnings = [f"({scope}) {w}" if scope else w for w in runbook.warnings]
    resolved = {planner.scoped(name): target for name, target in targets.items()}
    uses: list[UsedFile] = []
    for check in runbook.checks:
        try:
            checks.append(planner.plan_check(check))
        except InvalidRunbook as error:
            problems += error.problems
    for step in runbook.steps:
        try:
            if step.use is None:
                steps += planner.plan_loop(step)
                continue
            used = planner.plan_use(step, allow_missing)
            document = used.runbook.document
            uses += [UsedFile(planner.scoped(step.id), str(document.path), document.sha256), *used.uses]
            steps += used.steps
            checks += used.checks
            warnings += used.warnings
            resolved.update(used.targets)
        except InvalidRunbook as error:
            problems += error.problems
    if problems:
        raise InvalidRunbook(problems)
    return Plan(
        runbook, values, platform, resolved, tuple(checks), tuple(steps), tuple(warnings), tuple(uses)
    )


def sha256_text(text: str) -> str:
    """The sha256 of a text (a runbook as read, a plan's reviewable form), as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
