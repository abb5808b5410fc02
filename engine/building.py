"""Schema-valid data → the frozen `Runbook` model, plus the checks a schema cannot express.

Duplicate step ids, `on:` naming a target that does not exist, defaults that fail their own variable's
schema: each reported at its line, all together.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import bounds, model
from engine.errors import Problem
from engine.hostsettings import REACH_SETTINGS
from engine.loading import Document, JsonPath, Positions
from engine.model import LOCAL, Command, Template

_OUR_VARIABLE_KEYS = {"description", "default", "required", "secret"}


_RESERVED_NAMES = {"platform", "runbook", "host", "steps", "result", "omit", "batch"}
_BROKEN = (KeyError, TypeError, AttributeError, ValueError)


class _Builder:
    """Builds the model; `tolerant` (the schema found problems) skips the parts too broken to build, so the
    checks below still run on the rest and every problem of the file is reported at once."""

    def __init__(self, document: Document, tolerant: bool = False) -> None:
        self.positions: Positions = document.positions
        self.directory = document.path.parent  # `use:` paths are relative to the using runbook
        self.data: dict[str, Any] = document.data if isinstance(document.data, dict) else {}
        self.tolerant = tolerant
        self.problems: list[Problem] = []
        self.defaults: dict[str, Any] = self._part("defaults", dict)

    def _part(self, key: str, kind: type) -> Any:
        value = self.data.get(key, kind())
        return value if isinstance(value, kind) or not self.tolerant else kind()

    def _each(self, items: Any, build: Any) -> list[Any]:
        """`build(*item)` for each item; in tolerant mode an item the schema already refused is left out."""
        built = []
        for item in items:
            try:
                built.append(build(*item))
            except _BROKEN:
                if not self.tolerant:
                    raise
        return built

    def template(self, path: JsonPath, text: str | int) -> Template:
        return Template(str(text), path, self.positions.of(path), self.positions.file)

    def optional(self, mapping: dict[str, Any], path: JsonPath, key: str) -> Template | None:
        return self.template((*path, key), mapping[key]) if key in mapping else None

    def command(self, value: str | dict[str, str], path: JsonPath) -> Command:
        if isinstance(value, str):
            return Command((("*", self.template(path, value)),))
        return Command(tuple((name, self.template((*path, name), text)) for name, text in value.items()))

    def variables(self) -> tuple[model.Variable, ...]:
        return tuple(self._each(self._part("variables", dict).items(), self.variable))

    def variable(self, name: str, spec: dict[str, Any]) -> model.Variable:
        fragment = {k: v for k, v in spec.items() if k not in _OUR_VARIABLE_KEYS or k == "description"}
        return model.Variable(
            name=name,
            schema=fragment,
            description=spec.get("description", ""),
            default=spec.get("default"),
            has_default="default" in spec,
            required=spec.get("required", False),
            secret=spec.get("secret", False),
        )

    def targets(self) -> tuple[model.Target, ...]:
        found = self._each(self._part("targets", dict).items(), self.target)
        return (model.Target(LOCAL, local=True), *(t for t in found if t is not None))

    def target(self, name: str, spec: dict[str, Any]) -> model.Target | None:
        path: JsonPath = ("targets", name)
        if name == LOCAL:
            self.problems.append(
                self.positions.problem(path, "'local' is built in; choose another name", key=True)
            )
            return None
        ssh = spec.get("ssh", {})
        sp: JsonPath = (*path, "ssh")
        inventory = None
        if "from_file" in ssh:
            inventory = model.Inventory(
                self.template((*sp, "from_file"), ssh["from_file"]),
                ssh["each"],
                self.template((*sp, "host"), ssh["host"]),
                self.optional(ssh, sp, "where"),
                self.optional(ssh, sp, "name"),
            )
        hosts = tuple(self.template((*sp, "hosts", i), h) for i, h in enumerate(ssh.get("hosts", ())))
        return model.Target(
            name,
            local=bool(spec.get("local")),
            hosts=hosts,
            inventory=inventory,
            concurrency=spec.get("concurrency"),
            reach=self.reach(ssh, sp),
            jump=self.jump(ssh, sp),
            may_be_unreachable=spec.get("may_be_unreachable", False) is True,
        )

    def reach(self, spec: dict[str, Any], path: JsonPath) -> model.Reach:
        """The SSH settings of a target or of one jump host; booleans (`agent: no`) become their text."""

        def one(key: str) -> Template:
            value = spec[key]
            if isinstance(value, bool):
                value = "yes" if value else "no"
            return self.template((*path, key), value)

        return model.Reach(tuple((key, one(key)) for key in REACH_SETTINGS if spec.get(key) is not None))

    def jump(self, spec: dict[str, Any], path: JsonPath) -> model.Jump:
        value = spec.get("jump")
        if value is None:
            return model.Jump()
        if isinstance(value, str):
            return model.Jump(text=self.template((*path, "jump"), value))
        hops = [value] if isinstance(value, dict) else value
        where = (
            [(*path, "jump")] if isinstance(value, dict) else [(*path, "jump", i) for i in range(len(hops))]
        )
        return model.Jump(
            hops=tuple(
                model.Hop(self.template((*p, "host"), hop["host"]), self.reach(hop, p))
                for hop, p in zip(hops, where, strict=True)
            )
        )

    def checks(self, targets: set[str]) -> tuple[model.Check, ...]:
        return tuple(
            self._each(enumerate(self._part("checks", list)), lambda i, spec: self.check(i, spec, targets))
        )

    def check(self, index: int, spec: dict[str, Any], targets: set[str]) -> model.Check:
        path: JsonPath = ("checks", index)
        self._known_target(spec, path, targets)
        return model.Check(
            spec["title"],
            self.command(spec["run"], (*path, "run")),
            spec.get("on", LOCAL),
            self.optional(spec, path, "cwd"),
            model.seconds(spec.get("timeout", model.DEFAULT_CHECK_TIMEOUT)),
            index,
            spec.get("only_before_start", False) is True,
        )

    def steps(self, targets: set[str]) -> tuple[model.Step, ...]:
        self.seen: dict[str, JsonPath] = {}
        found = self._each(enumerate(self._part("steps", list)), lambda i, spec: self.one(i, spec, targets))
        return tuple(found)

    def one(
        self, index: int, spec: dict[str, Any], targets: set[str], within: JsonPath = (), on: str = LOCAL
    ) -> model.Step:
        """One step at `within` + (`steps`, index): ids are unique across the runbook, groups included."""
        path: JsonPath = (*within, "steps", index)
        if spec["id"] in self.seen:
            first = self.positions.of((*self.seen[spec["id"]], "id")).line
            self.problems.append(
                self.positions.problem(
                    (*path, "id"), f"duplicate step id {spec['id']!r} (first used at line {first})"
                )
            )
        self.seen.setdefault(spec["id"], path)
        self._known_target(spec, path, targets)
        step = self.step(index, spec, path, on)
        if within and ("steps" in spec or "use" in spec):  # one level, and a used runbook's own ids
            key = "steps" if "steps" in spec else "use"
            self.problems.append(self.positions.problem((*path, key), f"{key} is not allowed in a group"))
        if "steps" not in spec:
            return step
        if spec.get("on") == LOCAL and "serial" in spec:
            self.problems.append(self.positions.problem((*path, "serial"), "serial needs on: a target"))
        inner = enumerate(spec["steps"])
        built = self._each(inner, lambda i, s: self.one(i, s, targets, path, step.on))
        return replace(step, steps=tuple(built), group_on=step.on != LOCAL)

    def step(self, index: int, spec: dict[str, Any], path: JsonPath, on: str = LOCAL) -> model.Step:
        timeout = spec.get("timeout", self.defaults.get("timeout"))
        expect = spec.get("expect", {})
        codes = expect.get("exit_code", 0)
        self._literal_expect(expect, path)
        return model.Step(
            index=index,
            id=spec["id"],
            title=spec["title"],
            on=spec.get("on", on),
            run=self.command(spec["run"], (*path, "run")) if "run" in spec else None,
            manual=self.optional(spec, path, "manual"),
            record=self.record(spec, path),
            description=spec.get("description", ""),
            cwd=self.optional(spec, path, "cwd"),
            env=tuple((k, self.template((*path, "env", k), v)) for k, v in spec.get("env", {}).items()),
            shell=spec.get("shell", self.defaults.get("shell", model.DEFAULT_SHELL)),
            when=self.optional(spec, path, "when"),
            confirm=self.confirm(spec, path),
            approval=self.approval(spec, path),
            timeout=model.seconds(timeout) if timeout is not None else None,
            retries=model.retries(spec.get("retries", self.defaults.get("retries"))),
            continue_on_error=spec.get("continue_on_error", False),
            expect=model.Expect(
                tuple(codes) if isinstance(codes, list) else (codes,),
                expect.get("stdout_contains"),
                expect.get("stdout_matches"),
            ),
            result=self.optional(spec, path, "result"),
            concurrency=spec.get("concurrency"),
            max_failed_hosts=spec.get("max_failed_hosts", 0),
            requires=tuple(spec.get("requires", ())),
            run_once=spec.get("run_once", False),
            until=self.optional(spec, path, "until"),
            deadline=model.seconds(spec["deadline"]) if "deadline" in spec else None,
            loop=self.loop(spec, path),
            use=self.use(spec, path),
            serial=spec.get("serial"),
        )

    def _literal_expect(self, expect: dict[str, Any], path: JsonPath) -> None:
        """`expect` is matched as written, never rendered: `{{ version }}` there would be looked for as text."""
        for key in ("stdout_contains", "stdout_matches"):
            text = expect.get(key)
            if isinstance(text, str) and ("{{" in text or "{%" in text):
                message = (
                    f"expect.{key} is matched as written, not rendered: it would look for the braces "
                    "themselves; to compare the output with a value, write an until over the attempt "
                    '(until: "version in result.stdout"); to match braces, escape them in stdout_matches '
                    "(\\{\\{)"
                )
                self.problems.append(self.positions.problem((*path, "expect", key), message))

    def use(self, spec: dict[str, Any], path: JsonPath) -> model.Use | None:
        if "use" not in spec:
            return None
        given = tuple(
            (name, self.template((*path, "with", name), value) if isinstance(value, str) else value)
            for name, value in spec.get("with", {}).items()
        )
        file = Path(os.path.normpath(self.directory / spec["use"]))
        return model.Use(self.template((*path, "use"), spec["use"]), file, given)

    def loop(self, spec: dict[str, Any], path: JsonPath) -> model.Loop | None:
        var = spec.get("loop_var", "item")
        var = var if isinstance(var, str) else "item"  # the schema refused it; the other checks go on
        if "loop" not in spec:
            if "loop_var" in spec:
                self.problems.append(self.positions.problem((*path, "loop_var"), "'loop_var' needs a 'loop'"))
            return None
        if var in self.data.get("variables", {}) or var in _RESERVED_NAMES:
            self.problems.append(
                self.positions.problem(
                    (*path, "loop_var"), f"loop_var {var!r} would hide a name templates use; choose another"
                )
            )
        value = spec["loop"]
        if isinstance(value, str):
            return model.Loop(expression=self.template((*path, "loop"), value), var=var)
        if len(value) > bounds.MAX_ITEMS:
            self.problems.append(self.positions.problem((*path, "loop"), bounds.TOO_MANY_ITEMS))
        return model.Loop(items=tuple(value), var=var)

    def record(self, spec: dict[str, Any], path: JsonPath) -> model.Record | None:
        if "record" not in spec:
            return None
        record = spec["record"]
        prompt = self.template((*path, "record", "prompt"), record["prompt"])
        expect = record.get("expect")
        if isinstance(expect, dict):
            return model.Record(prompt, matches=expect["matches"])
        equals = self.template((*path, "record", "expect"), expect) if expect is not None else None
        return model.Record(prompt, equals=equals)

    def confirm(self, spec: dict[str, Any], path: JsonPath) -> model.Confirm | None:
        value = spec.get("confirm", False)
        if value is False:
            return None
        if value is True:
            return model.Confirm()
        if isinstance(value, str):
            return model.Confirm(self.template((*path, "confirm"), value))
        return model.Confirm(
            self.optional(value, (*path, "confirm"), "question"),
            self.template((*path, "confirm", "type"), value["type"]),
        )

    def approval(self, spec: dict[str, Any], path: JsonPath) -> model.Approval | None:
        if "approval" not in spec:
            return None
        value, where = spec["approval"], (*path, "approval")
        timeout = value.get("timeout")
        return model.Approval(
            self.template((*where, "required"), value.get("required", 1)),
            tuple(value.get("from", ())),
            model.seconds(timeout) if timeout is not None else None,
            self.optional(value, where, "allowed_signers"),
        )

    def rules(self) -> tuple[model.Rule, ...]:
        def one(index: int, spec: dict[str, Any]) -> model.Rule:
            path: JsonPath = ("rules", index)
            return model.Rule(
                self.template((*path, "assert"), spec["assert"]),
                self.template((*path, "message"), spec["message"]),
            )

        return tuple(self._each(enumerate(self._part("rules", list)), one))

    def _known_target(self, spec: dict[str, Any], path: JsonPath, targets: set[str]) -> None:
        name = spec.get("on", LOCAL)
        if name not in targets:
            known = ", ".join(sorted(targets))
            self.problems.append(
                self.positions.problem((*path, "on"), f"unknown target {name!r}; targets: {known}")
            )


def build(document: Document, tolerant: bool = False) -> tuple[model.Runbook, list[Problem]]:
    """The model and the semantic problems found while building it (empty when the runbook is sound).

    `tolerant`: the schema refused parts of the file already; build what can be built, for the other checks.
    """
    builder = _Builder(document, tolerant)
    data = builder.data
    targets = builder.targets()
    names = {t.name for t in targets}

    def text(key: str) -> str:
        return str(data.get(key, "") if tolerant else data[key])

    runbook = model.Runbook(
        document=document,
        format=data.get("runbook", 1),
        name=text("name"),
        version=text("version"),
        title=text("title"),
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        warnings=tuple(builder._part("warnings", list)),
        variables=builder.variables(),
        targets=targets,
        checks=builder.checks(names),
        steps=builder.steps(names),
        default_concurrency=builder.defaults.get("concurrency", model.DEFAULT_CONCURRENCY),
        rules=builder.rules(),
    )
    return runbook, builder.problems
