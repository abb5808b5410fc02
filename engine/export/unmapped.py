"""What an export cannot express, found before anything is written: refused, or commented with `--lossy`.

The rule is a whitelist: every field of the model an export maps is named here, and any other field that is
set (a step key added after the export was written) is refused by name rather than silently dropped. So the
export stays safe as the format grows: a new key is refused until someone maps it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.errors import Problem
from engine.export.ansible_inventory import jump_refusal
from engine.grouping import flat
from engine.loading import JsonPath
from engine.model import Check, Runbook, Template
from engine.planning import Plan, PlannedStep, operator_texts
from engine.rendering import names_used, template_problem
from engine.targets import Host
from engine.transports import Agent, Transport
from engine.variables import Values

# The fields an export maps, per model class. Fields left at their default are never a problem.
STEP_FIELDS = frozenset(
    {
        "index", "id", "title", "on", "run", "manual", "record", "description", "cwd", "env", "shell",
        "when", "confirm", "timeout", "retries", "continue_on_error", "expect", "result", "concurrency",
        "max_failed_hosts", "requires", "run_once", "until", "loop", "approval",
    }
)  # fmt: skip
# A group is exported as its steps, batch by batch (each batch's tasks on its hosts only, in the order the
# engine runs them); its `max_failed_hosts` (the rest of a failed host's batch left out) is not mapped.
GROUP_FIELDS = frozenset(
    {"index", "id", "title", "description", "on", "when", "loop", "steps", "serial", "group_on"}
)
# only_before_start: a playbook always runs from its first task, where such a check holds
CHECK_FIELDS = frozenset({"title", "run", "on", "cwd", "timeout", "index", "only_before_start"})
# A target's `reach`/`jump` templates end up in its hosts' fields, checked one by one below; a host's `vars`
# (its inventory entry) only feed templates, which the plan has rendered already.
TARGET_FIELDS = frozenset({"name", "local", "hosts", "inventory", "concurrency", "reach", "jump"})
HOST_FIELDS = frozenset({"name", "address", "user", "port", "key_file", "transport", "vars"})
AGENTS = frozenset({None, Agent.NO})  # the agent uses an export can say (see ansible_inventory)
TRANSPORTS = frozenset({Transport.LOCAL, Transport.SSH})
RUNBOOK_FIELDS = frozenset(
    {
        "document", "format", "name", "version", "title", "description", "source", "warnings", "variables",
        "targets", "checks", "steps", "default_concurrency", "rules",
    }
)  # fmt: skip

FOUR_EYES = (
    "'approval' (four eyes) has no Ansible equivalent: nothing would prove who approved what; with --lossy "
    "a pause stands in for it, and anyone at the terminal answers it"
)

RUN_TIME = "known at run time>"  # the tail of a `Deferred` placeholder in rendered text


@dataclass(frozen=True)
class Unmapped:
    """One place the export cannot express; `step` is the step it belongs to (None: the whole runbook)."""

    problem: Problem
    step: str | None = None

    @property
    def comment(self) -> str:
        """The `--lossy` comment written at the place instead."""
        return f"LOSSY {self.problem.path}: {self.problem.message}"


def find(plan: Plan) -> list[Unmapped]:
    """Every place of the plan the export cannot express: the runbook's file first, then each used one's."""
    found = list(_runbook_parts(plan.runbook, used=False))
    for name, resolved in plan.targets.items():
        for host in resolved.hosts:
            found += _host_fields(plan.runbook, name, host)
    for planned in plan.steps:
        runbook = source(plan, planned)[0]
        found += _fields(runbook, planned.step, step_path(planned), STEP_FIELDS, planned.id)
        found += _run_time(plan, planned)
        found += _approval(runbook, planned)
    found += _run_time_checks(plan)
    main = plan.runbook.document.positions.file
    return sorted(
        found, key=lambda u: (u.problem.file != main, u.problem.file, u.problem.line, u.problem.column)
    )


def source(plan: Plan, planned: PlannedStep) -> tuple[Runbook, Values]:
    """The runbook a planned step comes from (a used one's, for `use:`) and the values it was planned with."""
    return planned.scope.runbook, planned.scope.values


def step_path(planned: PlannedStep) -> JsonPath:
    """Where a planned step is written in its runbook: in its group's `steps`, if it has one."""
    place = planned.place
    return (
        ("steps", place.group.index, "steps", planned.step.index) if place else ("steps", planned.step.index)
    )


def _runbook_parts(runbook: Runbook, used: bool) -> Iterable[Unmapped]:
    """The runbook's own fields, targets, rules, checks and `use:` steps, and the same of each used runbook."""
    yield from _fields(runbook, runbook, (), RUNBOOK_FIELDS, None)
    for target in runbook.targets:
        yield from _fields(runbook, target, ("targets", target.name), TARGET_FIELDS, None)
    yield from _secret_rules(runbook)
    for check in runbook.checks:
        yield from _fields(runbook, check, ("checks", check.index), CHECK_FIELDS, None)
    secrets = [v for v in runbook.variables if v.secret]
    if used and secrets:
        where = runbook.document.positions.problem(("variables", secrets[0].name), "", key=True)
        message = "a used runbook's secret would come through `with:`; the export reads secrets of the top runbook only"
        yield Unmapped(dataclasses.replace(where, message=message))
    for step in runbook.steps:
        if step.is_group:  # in the plan only through its steps, each checked as a step
            yield from _fields(runbook, step, ("steps", step.index), GROUP_FIELDS, step.id)
            if step.when is not None and {"steps", "platform"} & names_used("{{" + step.when.text + "}}"):
                message = "a group's when over a value known only while running; the export decides it now"
                yield Unmapped(template_problem(step.when, message), step.id)
        if step.use is not None:  # in the plan only through its runbook's steps
            yield from _fields(runbook, step, ("steps", step.index), STEP_FIELDS | {"use"}, step.id)
            if step.use.runbook is not None:
                yield from _runbook_parts(step.use.runbook, used=True)


def all_checks(runbook: Runbook) -> Iterable[tuple[Runbook, Check]]:
    """Every check in the plan's order: the runbook's, then each used runbook's (as `build_plan` adds them)."""
    yield from ((runbook, check) for check in runbook.checks)
    for step in runbook.steps:
        if step.use is not None and step.use.runbook is not None:
            yield from all_checks(step.use.runbook)


def _fields(
    runbook: Runbook, value: Any, path: JsonPath, mapped: frozenset[str], step: str | None
) -> Iterable[Unmapped]:
    for item in dataclasses.fields(value):
        if item.name in mapped or _is_default(item, getattr(value, item.name)):
            continue
        where = runbook.document.positions.problem((*path, item.name), "", key=True)
        message = f"{item.name!r} has no Ansible equivalent the export knows; it is not carried over"
        yield Unmapped(dataclasses.replace(where, message=message), step)


def _approval(runbook: Runbook, planned: PlannedStep) -> Iterable[Unmapped]:
    """An approval someone must give is refused by name; `required` 0 (nobody, knowingly) loses nothing."""
    if planned.approval is not None and planned.approval.required != 0:
        where = runbook.document.positions.problem(("steps", planned.step.index, "approval"), "", key=True)
        yield Unmapped(dataclasses.replace(where, message=FOUR_EYES), planned.id)


def _secret_rules(runbook: Runbook) -> Iterable[Unmapped]:
    """Rules and `when`s are decided when the export is made (the values are fixed then); one over a secret
    cannot be: the export never has it (and would write what it decided from it into the playbook)."""
    secrets = {v.name for v in runbook.variables if v.secret}
    conditions: list[tuple[str, Template, str | None]] = [("rule", r.condition, None) for r in runbook.rules]
    conditions += [("when", step.when, step.id) for step, _ in flat(runbook.steps) if step.when is not None]
    for kind, condition, step in conditions:
        read = names_used("{{ " + condition.text + " }}") & secrets
        if read:
            message = f"the {kind} reads the secret {', '.join(sorted(read))}, which the export never has"
            yield Unmapped(template_problem(condition, message), step)


def _is_default(item: dataclasses.Field[Any], value: Any) -> bool:
    if item.default is not dataclasses.MISSING:
        return bool(value == item.default)
    if item.default_factory is not dataclasses.MISSING:
        return bool(value == item.default_factory())
    return False


def _host_fields(runbook: Runbook, target: str, host: Host) -> Iterable[Unmapped]:
    if host.transport not in TRANSPORTS:
        where = runbook.document.positions.problem(("targets", target), "", key=True)
        message = (
            f"host {host.name}: transport {host.transport.value!r} has no Ansible connection the export knows"
        )
        yield Unmapped(dataclasses.replace(where, message=message))
    for hop in host.jump:
        refusal = jump_refusal(hop, len(host.jump))
        if refusal is not None:
            where = runbook.document.positions.problem(("targets", target), "", key=True)
            message = f"host {host.name}: jump host {hop.address}: {refusal}"
            yield Unmapped(dataclasses.replace(where, path=f"targets.{target}", message=message))
    for item in dataclasses.fields(host):
        if (item.name == "agent" and host.agent in AGENTS) or item.name == "jump":
            continue
        if item.name not in HOST_FIELDS and not _is_default(item, getattr(host, item.name)):
            where = runbook.document.positions.problem(("targets", target), "", key=True)
            message = f"host {host.name}: {item.name!r} has no Ansible equivalent the export knows"
            yield Unmapped(dataclasses.replace(where, path=f"targets.{target}", message=message))


def when_on_the_host(plan: Plan, planned: PlannedStep) -> bool:
    """A `when` the plan could not decide only because an SSH host's platform is known once connected, over
    values an export can pass along: the exported playbook decides it on each host."""
    step = planned.step
    if step.when is None or not any(h.deferred and h.skip is None for h in planned.hosts):
        return False
    names = names_used("{{" + step.when.text + "}}")
    values = source(plan, planned)[1]
    known = {"platform", "runbook"} | (set(values.values) - values.secrets)
    return "platform" in names and names <= known


def _run_time(plan: Plan, planned: PlannedStep) -> Iterable[Unmapped]:
    """Values the plan only knows while running: `steps.<id>`, or an SSH host's platform outside `run:` keys."""
    runbook, step = source(plan, planned)[0], planned.step
    places = []
    deferred = any(h.deferred and h.skip is None for h in planned.hosts)
    if planned.manual is not None and step.when is not None and planned.skip is None:  # no hosts to say it
        deferred = "steps" in names_used("{{" + step.when.text + "}}")
    if step.when is not None and deferred and not when_on_the_host(plan, planned):
        places.append("when")
    texts = {
        "run": [v.script for h in planned.hosts for v in h.variants],
        "cwd": [h.cwd or "" for h in planned.hosts],
        "env": [value for h in planned.hosts for _, value in h.env],
    }
    places += [key for key, found in texts.items() if any(RUN_TIME in text for text in found)]
    message = (
        "uses a value known only while running (steps.<id>, or an SSH host's platform outside "
        "per-platform run: keys); the export renders every command and text when it is made"
    )
    for key in places:
        where = runbook.document.positions.problem((*step_path(planned), key), "", key=True)
        yield Unmapped(dataclasses.replace(where, message=message), planned.id)
    if step.until is not None and names_used("{{" + step.until.text + "}}") - {"result"}:
        names = ", ".join(sorted(names_used("{{" + step.until.text + "}}") - {"result"}))
        text = f"until reads {names}: the export maps an until over `result` only"
        yield Unmapped(template_problem(step.until, text), planned.id)
    if planned.texts_deferred:
        for template in operator_texts(step):
            if "steps" in names_used(template.text):
                yield Unmapped(template_problem(template, message), planned.id)


def _run_time_checks(plan: Plan) -> Iterable[Unmapped]:
    for planned, (runbook, check) in zip(plan.checks, all_checks(plan.runbook)):
        if any(RUN_TIME in v.script or RUN_TIME in (h.cwd or "") for h in planned.hosts for v in h.variants):
            where = runbook.document.positions.problem(("checks", check.index, "run"), "", key=True)
            message = "uses an SSH host's platform outside a per-platform run:; the export renders it now"
            yield Unmapped(dataclasses.replace(where, message=message))
