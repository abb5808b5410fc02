"""Schema-valid data → the frozen `Runbook` model, plus the checks a schema cannot express.

Duplicate step ids, `on:` naming a target that does not exist, defaults that fail their own variable's
schema: each reported at its line, all together.
"""

from __future__ import annotations

from typing import Any

from engine import model, schema
from engine.errors import Problem
from engine.loading import Document, JsonPath, Positions
from engine.model import LOCAL, Command, Template

_OUR_VARIABLE_KEYS = {"description", "default", "required", "secret"}


class _Builder:
    def __init__(self, document: Document) -> None:
        self.positions: Positions = document.positions
        self.data: dict[str, Any] = document.data
        self.problems: list[Problem] = []
        self.defaults: dict[str, Any] = self.data.get("defaults", {})

    def template(self, path: JsonPath, text: str | int) -> Template:
        return Template(str(text), path, self.positions.of(path), self.positions.file)

    def optional(self, mapping: dict[str, Any], path: JsonPath, key: str) -> Template | None:
        return self.template(path + (key,), mapping[key]) if key in mapping else None

    def command(self, value: str | dict[str, str], path: JsonPath) -> Command:
        if isinstance(value, str):
            return Command((("*", self.template(path, value)),))
        return Command(tuple((name, self.template(path + (name,), text)) for name, text in value.items()))

    def variables(self) -> tuple[model.Variable, ...]:
        result = []
        for name, spec in self.data.get("variables", {}).items():
            fragment = {k: v for k, v in spec.items() if k not in _OUR_VARIABLE_KEYS or k == "description"}
            if "format" in spec and spec["format"] not in schema.CHECKED_FORMATS:  # jsonschema would ignore it
                self.problems.append(self.positions.problem(("variables", name, "format"), (
                    f"format {spec['format']!r} cannot be checked here; use a pattern, or one of: "
                    + ", ".join(sorted(schema.CHECKED_FORMATS)))))
            result.append(model.Variable(
                name=name, schema=fragment, description=spec.get("description", ""),
                default=spec.get("default"), has_default="default" in spec,
                required=spec.get("required", False), secret=spec.get("secret", False)))
        return tuple(result)

    def targets(self) -> tuple[model.Target, ...]:
        result = [model.Target(LOCAL, local=True)]
        for name, spec in self.data.get("targets", {}).items():
            path: JsonPath = ("targets", name)
            if name == LOCAL:
                self.problems.append(self.positions.problem(path, "'local' is built in; choose another name", key=True))
                continue
            ssh = spec.get("ssh", {})
            inventory = None
            if "from_file" in ssh:
                sp = path + ("ssh",)
                inventory = model.Inventory(
                    self.template(sp + ("from_file",), ssh["from_file"]), ssh["each"],
                    self.template(sp + ("host",), ssh["host"]), self.optional(ssh, sp, "user"),
                    self.optional(ssh, sp, "port"), self.optional(ssh, sp, "key_file"))
            result.append(model.Target(name, local=bool(spec.get("local")), hosts=tuple(ssh.get("hosts", ())),
                                       inventory=inventory, concurrency=spec.get("concurrency")))
        return tuple(result)

    def checks(self, targets: set[str]) -> tuple[model.Check, ...]:
        result = []
        for index, spec in enumerate(self.data.get("checks", [])):
            path: JsonPath = ("checks", index)
            self._known_target(spec, path, targets)
            result.append(model.Check(
                spec["title"], self.command(spec["run"], path + ("run",)), spec.get("on", LOCAL),
                self.optional(spec, path, "cwd"), model.seconds(spec.get("timeout", model.DEFAULT_CHECK_TIMEOUT)),
                index))
        return tuple(result)

    def steps(self, targets: set[str]) -> tuple[model.Step, ...]:
        seen: dict[str, int] = {}
        result = []
        for index, spec in enumerate(self.data["steps"]):
            path: JsonPath = ("steps", index)
            if spec["id"] in seen:
                first = self.positions.of(("steps", seen[spec["id"]], "id")).line
                self.problems.append(self.positions.problem(
                    path + ("id",), f"duplicate step id {spec['id']!r} (first used at line {first})"))
            seen.setdefault(spec["id"], index)
            self._known_target(spec, path, targets)
            result.append(self.step(index, spec, path))
        return tuple(result)

    def step(self, index: int, spec: dict[str, Any], path: JsonPath) -> model.Step:
        timeout = spec.get("timeout", self.defaults.get("timeout"))
        expect = spec.get("expect", {})
        codes = expect.get("exit_code", 0)
        return model.Step(
            index=index, id=spec["id"], title=spec["title"], on=spec.get("on", LOCAL),
            run=self.command(spec["run"], path + ("run",)) if "run" in spec else None,
            manual=self.optional(spec, path, "manual"), record=self.record(spec, path),
            description=spec.get("description", ""), cwd=self.optional(spec, path, "cwd"),
            env=tuple((k, self.template(path + ("env", k), v)) for k, v in spec.get("env", {}).items()),
            shell=spec.get("shell", self.defaults.get("shell", model.DEFAULT_SHELL)),
            when=self.optional(spec, path, "when"), confirm=self.confirm(spec, path),
            timeout=model.seconds(timeout) if timeout is not None else None,
            retries=model.retries(spec.get("retries", self.defaults.get("retries"))),
            continue_on_error=spec.get("continue_on_error", False),
            expect=model.Expect(tuple(codes) if isinstance(codes, list) else (codes,),
                                expect.get("stdout_contains"), expect.get("stdout_matches")),
            result=spec.get("result", ""), concurrency=spec.get("concurrency"),
            max_failed_hosts=spec.get("max_failed_hosts", 0), requires=tuple(spec.get("requires", ())))

    def record(self, spec: dict[str, Any], path: JsonPath) -> model.Record | None:
        if "record" not in spec:
            return None
        if "manual" not in spec:
            self.problems.append(self.positions.problem(path + ("record",), "'record' belongs to manual steps only"))
        record = spec["record"]
        expect = record.get("expect")
        if isinstance(expect, dict):
            return model.Record(record["prompt"], matches=expect["matches"])
        equals = self.template(path + ("record", "expect"), expect) if expect is not None else None
        return model.Record(record["prompt"], equals=equals)

    def confirm(self, spec: dict[str, Any], path: JsonPath) -> model.Confirm | None:
        value = spec.get("confirm", False)
        if value is False:
            return None
        if value is True:
            return model.Confirm(f"Run step {spec['id']!r} ({spec['title']})?")
        if isinstance(value, str):
            return model.Confirm(value)
        question = value.get("question", f"Type the text below to run step {spec['id']!r}")
        return model.Confirm(question, self.template(path + ("confirm", "type"), value["type"]))

    def _known_target(self, spec: dict[str, Any], path: JsonPath, targets: set[str]) -> None:
        name = spec.get("on", LOCAL)
        if name not in targets:
            known = ", ".join(sorted(targets))
            self.problems.append(self.positions.problem(path + ("on",), f"unknown target {name!r}; targets: {known}"))


def build(document: Document) -> tuple[model.Runbook, list[Problem]]:
    """The model and the semantic problems found while building it (empty when the runbook is sound)."""
    builder = _Builder(document)
    data = builder.data
    targets = builder.targets()
    names = {t.name for t in targets}
    runbook = model.Runbook(
        document=document, format=data["runbook"], name=data["name"], version=data["version"],
        title=data["title"], description=data.get("description", ""), source=data.get("source", ""),
        warnings=tuple(data.get("warnings", ())), variables=builder.variables(), targets=targets,
        checks=builder.checks(names), steps=builder.steps(names),
        default_concurrency=builder.defaults.get("concurrency", model.DEFAULT_CONCURRENCY))
    return runbook, builder.problems
