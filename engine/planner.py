"""Renders a runbook into its plan (`build_plan`): every step for each host of its target, and each used
runbook's steps in its place, under the using step's id.

One `Planner` per runbook in the plan (the runbook's own, and one per `use:`) renders from the step's
`Scope`; the finished plan keeps them behind its `StepRenderer` port, so the runner renders a deferred step
(one that reads earlier steps' output) exactly as the plan would have, without holding a planner.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine import conditions, grouping, looping, model, programs, using
from engine.approvals.planned import plan_approval
from engine.errors import InvalidRunbook, Problem
from engine.grouping import Place
from engine.looping import LoopItem
from engine.model import Command, Runbook, Step, Template
from engine.planning import (
    Blank,
    HostPlan,
    Plan,
    PlannedCheck,
    PlannedStep,
    Scope,
    UsedFile,
    Variant,
    operator_texts,
)
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


class Planner:
    """Renders steps for hosts. Used once for the whole plan, and again by the runner for deferred steps."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.runbook, self.values, self.platform = scope.runbook, scope.values, scope.platform
        self.targets, self.number = scope.targets, scope.number  # a used runbook's: the using step's number
        runbook, values = scope.runbook, scope.values
        numbers = {unit: self.number or s.index + 1 for s in runbook.steps for unit in using.unit_ids(s)}
        # what `steps.` is before the run: a placeholder, or on paper a blank naming the step to read it from
        self.unknown_steps = Deferred("steps", numbers if scope.paper else None)
        self.secret_refs = {name: SecretRef(name) for name in values.secrets}
        base: dict[str, Any] = {name: Blank(name) for name in values.missing}
        base.update(values.values)
        base.update(self.secret_refs)
        base["runbook"] = runbook.context()
        self.base = base

    def context(
        self,
        host: Host,
        platform: str | None,
        steps: Any,
        item: LoopItem | None = None,
        place: Place | None = None,
    ) -> dict[str, Any]:
        if not isinstance(steps, Deferred):  # the run's: typed only then (a plan does not import `results`)
            from engine import results

            steps = results.steps(steps)
        found = {
            **self.base,
            **(place.vars() if place else {}),
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
        known = self.values.values  # a secret not given yet (export, plan) stays a reference
        secrets = {name: known[name] for name in self.secret_refs if name in known}
        return evaluate(when, {**context, **secrets}, hidden=(str(value) for value in secrets.values()))

    def host_platform(self, host: Host) -> str | None:
        return self.platform if host.transport is Transport.LOCAL else None

    def used_scopes(self, step: Step, allow_missing: bool) -> Iterator[Scope]:
        """What the runbook a step uses is planned with, once per item of its loop (`snapshot[2]`): its
        values from `with:`, under the step's id, skipped whole when the step's `when` is false."""
        assert step.use is not None and step.use.runbook is not None
        items = looping.items(step, self.context(LOCAL_HOST, self.platform, self.unknown_steps))
        for item in items or (None,):
            context = self.context(LOCAL_HOST, self.platform, self.unknown_steps, item)
            skip, later = self._skip(step, None, context, self.unknown_steps, self.platform)
            if later:  # its steps are planned in another scope, which knows nothing of this one's outputs
                why = "a use step's when is decided when the plan is made: it cannot read steps. or platform"
                raise InvalidRunbook([template_problem(step.when or step.use.path, why)])
            values, targets = using.used_values(self.runbook, step, context, allow_missing)
            yield Scope(
                runbook=step.use.runbook,
                values=values,
                platform=self.platform,
                targets=targets,
                name=self.scope.scoped(item.suffix(step.id) if item else step.id),
                number=self.number or step.index + 1,
                paper=self.scope.paper,
                skip=self.scope.skip or skip,
            )

    def plan_loop(self, step: Step, place: Place | None = None) -> tuple[PlannedStep, ...]:
        """The step once, or once per item of its loop (each its own unit: `rotate[1]`, `rotate[2]`…)."""
        if step.is_group:
            return self.plan_group(step)
        if step.loop is None:
            return (self.plan_step(step, place=place),)
        host = self.hosts(step, place)[0]
        context = self.context(host, self.platform, self.unknown_steps, place=place)
        return tuple(self.plan_step(step, item=item, place=place) for item in looping.items(step, context))

    def plan_group(self, group: Step) -> tuple[PlannedStep, ...]:
        """A group's steps, in order, for each item of its loop and each batch of its target's hosts."""
        hosts = self.targets[group.on].hosts
        items = looping.items(group, self.context(hosts[0], self.platform, self.unknown_steps))
        places = grouping.places(group, items, hosts)
        return tuple(
            unit for place in places for inner in group.steps for unit in self.plan_loop(inner, place)
        )

    def hosts(self, step: Step, place: Place | None) -> tuple[Host, ...]:
        """Where a step runs: its target's hosts, or in a rolling group (on the group's target) the batch's."""
        return (place.batch_hosts(step) if place else ()) or self.targets[step.on].hosts

    def plan_step(
        self,
        step: Step,
        steps: Any = None,
        platforms: Mapping[str, str] | None = None,
        item: LoopItem | None = None,
        place: Place | None = None,
    ) -> PlannedStep:
        """Render `step` for each host of its target; `steps`/`platforms` are the run's knowledge, if any."""
        steps = steps if steps is not None else self.unknown_steps
        target, on = self.targets[step.on], self.hosts(step, place)
        deferred = step.run is not None and any("steps" in names_used(t.text) for _, t in step.run.variants)
        # A command that does not mention `host` is the same on every host of a platform: render it once.
        memo: dict[str | None, _Rendered] | None = None if _uses_host(step) else {}
        hosts = tuple(
            self._host_plan(step, host, steps, platforms, deferred, memo, item, place)
            for host in (on if step.run else ())
        )
        first = self.context(on[0], self.platform, steps, item, place)
        skip, when_deferred = (
            self._skip(step, place, first, steps, self.platform) if not step.run else (None, False)
        )
        unknown = isinstance(steps, Deferred)  # before the run: what reads `steps.` is rendered again then
        reads_steps = unknown and any("steps" in names_used(t.text) for t in operator_texts(step))

        def text(template: Template | None) -> str | None:
            return render(template, first) if template is not None else None

        confirm, record = step.confirm, step.record
        return PlannedStep(
            number=self.number or (place.group if place else step).index + 1,
            step=step,
            target=self.scope.scoped(step.on),
            hosts=hosts,
            concurrency=step.concurrency or target.concurrency,
            programs=programs.needed(step.run, step.requires),
            manual=text(step.manual),
            record_expect=text(record.equals) if record else None,
            confirm_text=text(confirm.typed) if confirm else None,
            confirm_question=(text(confirm.question) or default_question(step)) if confirm else None,
            record_prompt=text(record.prompt) if record else None,
            result=text(step.result) if unknown else None,  # the runner's, after it
            approval=plan_approval(step.approval, first, self.scope.paper) if step.approval else None,
            texts_deferred=when_deferred or reads_steps,
            item=item,
            scope=self.scope,
            place=place,
            skip=skip,
        )

    def text(self, planned: PlannedStep, template: Template, steps: Any, host: Host | None = None) -> str:
        """A text the operator reads (a step's `result`), rendered with what is known now (for `host`)."""
        host = host or self.hosts(planned.step, planned.place)[0]
        return render(template, self.context(host, self.platform, steps, planned.item, planned.place))

    def _host_plan(
        self,
        step: Step,
        host: Host,
        steps: Any,
        platforms: Mapping[str, str] | None,
        deferred: bool,
        memo: dict[str | None, _Rendered] | None,
        item: LoopItem | None = None,
        place: Place | None = None,
    ) -> HostPlan:
        platform = (platforms or {}).get(host.name) or self.host_platform(host)
        context = self.context(host, platform, steps, item, place)
        skip, later = self._skip(step, place, context, steps, platform)
        deferred = (deferred and isinstance(steps, Deferred)) or later
        if skip is not None:  # not rendered: a false `when` may guard values the command needs
            return HostPlan(host=host, variants=(), skip=skip)
        rendered = memo.get(platform) if memo is not None else None
        if rendered is None:
            assert step.run is not None
            env, secret_env = self._env(step, context)
            cwd = render(step.cwd, context) if step.cwd else None
            rendered = _Rendered(self.variants(step.run, context, platform), cwd, env, secret_env)
            if memo is not None:
                memo[platform] = rendered
        per_host = step.result if step.result and "host" in names_used(step.result.text) else None
        return HostPlan(
            host=host,
            result=render(per_host, context) if per_host and isinstance(steps, Deferred) else None,
            variants=rendered.variants,
            cwd=rendered.cwd,
            env=rendered.env,
            skip=skip,
            deferred=deferred,
            secret_env=rendered.secret_env,
        )

    def _skip(
        self, step: Step, place: Place | None, context: dict[str, Any], steps: Any, platform: str | None
    ) -> tuple[str | None, bool]:
        whens = (*(place.whens if place else ()), *((step.when,) if step.when else ()))
        if self.scope.skip:  # a used runbook's steps, when the step using it has a false `when`
            return self.scope.skip, False
        return conditions.skipped(whens, context, isinstance(steps, Deferred), platform, self.condition)

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
                message = f"no command for platform {platform!r}: add '{platform}' or 'default'"
                raise InvalidRunbook([template_problem(command.variants[0][1], message)])
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
            cwd = render(check.cwd, context) if check.cwd else None
            hosts.append(HostPlan(host, self.variants(check.run, context, platform), cwd=cwd))
        name = self.scope.name
        title = f"({name}) {check.title}" if name else check.title
        target_name = self.scope.scoped(check.on)
        return PlannedCheck(title, target_name, tuple(hosts), check.timeout, check.only_before_start)


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


def _uses_host(step: Step) -> bool:
    templates = [t for _, t in step.run.variants] if step.run else []
    templates += [step.cwd] if step.cwd else []
    templates += [t for _, t in step.env]
    return any("host" in names_used(t.text) for t in templates)


class Planners:
    """The plan's `StepRenderer`: the planner of each runbook in the plan, by its scope's name."""

    def __init__(self) -> None:
        self._planners: dict[str, Planner] = {}

    def add(self, planner: Planner) -> Planner:
        self._planners[planner.scope.name] = planner
        return planner

    def step(
        self, planned: PlannedStep, steps: Mapping[str, Any], platforms: Mapping[str, str]
    ) -> PlannedStep:
        return self._of(planned).plan_step(planned.step, steps, platforms, planned.item, planned.place)

    def text(
        self, planned: PlannedStep, template: Template, steps: Mapping[str, Any], host: Host | None = None
    ) -> str:
        return self._of(planned).text(planned, template, steps, host)

    def context(
        self, planned: PlannedStep, host: Host, platform: str | None, steps: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self._of(planned).context(host, platform, steps, planned.item, planned.place)

    def _of(self, planned: PlannedStep) -> Planner:
        return self._planners[planned.scope.name]


def build_plan(
    runbook: Runbook,
    values: Values,
    platform: str | None,
    targets: Mapping[str, ResolvedTarget],
    allow_missing: bool = False,
    paper: bool = False,
) -> Plan:
    """The whole plan; every render problem of every step is raised together."""
    scope = Scope(runbook=runbook, values=values, platform=platform, targets=targets, paper=paper)
    return _build(scope, allow_missing, Planners())


def _build(scope: Scope, allow_missing: bool, planners: Planners) -> Plan:
    """The plan of one runbook. A step that uses another runbook adds that runbook's plan in its place: its
    warnings, checks, targets and steps, under the step's id (`scope`)."""
    planner = planners.add(Planner(scope))
    runbook = scope.runbook
    problems: list[Problem] = []
    steps: list[PlannedStep] = []
    checks: list[PlannedCheck] = []
    warnings = [f"({scope.name}) {w}" if scope.name else w for w in runbook.warnings]
    resolved = {scope.scoped(name): target for name, target in scope.targets.items()}
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
            for used_scope in planner.used_scopes(step, allow_missing):
                used = _build(used_scope, allow_missing, planners)
                document = used.runbook.document
                uses += [UsedFile(used_scope.name, str(document.path), document.sha256), *used.uses]
                steps += used.steps
                checks += used.checks
                warnings += used.warnings
                resolved.update(used.targets)
        except InvalidRunbook as error:
            problems += error.problems
    if problems:
        raise InvalidRunbook(problems)
    return Plan(
        runbook,
        scope.values,
        scope.platform,
        resolved,
        tuple(checks),
        tuple(steps),
        planners,
        tuple(warnings),
        tuple(uses),
    )
