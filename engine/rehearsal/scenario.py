"""A rehearsal's scenario: what the simulated hosts answer, loaded and checked like a runbook.

The file is YAML read by the engine's own loader (positions kept), checked by its own JSON Schema
(`scenario-v1.schema.json`), every problem reported at once as `file:line:col: path: message`. The model
is plain frozen values; `Scenario.rule_for` picks the first rule that matches a command.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from engine.errors import InvalidRunbook
from engine.loading import load
from engine.model import seconds
from engine.schema import locate

SCHEMA_PATH = Path(__file__).with_name("scenario-v1.schema.json")


@dataclass(frozen=True)
class Answer:
    """What one simulated command does: its exit code, output and simulated duration."""

    exit: int = 0
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class Rule:
    """Answers for the commands it matches: by step id and/or a regex over the command, on some hosts."""

    index: int  # its place in the file (answers[index]), how the report names it
    line: int
    answers: tuple[Answer, ...]  # one, or successive calls' (the last repeats)
    step: str | None = None
    command: re.Pattern[str] | None = None
    hosts: tuple[str, ...] = ()  # empty: every host

    def matches(self, step: str | None, host: str, script: str) -> bool:
        if self.hosts and host not in self.hosts:
            return False
        if self.step is not None and (step is None or not step_named(self.step, step)):
            return False
        return self.command is None or self.command.search(script) is not None

    def answer(self, call: int) -> Answer:
        """The answer to this rule's `call`-th command on a host (0-based)."""
        return self.answers[min(call, len(self.answers) - 1)]

    @property
    def label(self) -> str:
        return f"answers[{self.index}] (line {self.line})"


def step_named(wanted: str, step: str) -> bool:
    """`rotate` names `rotate[2]`; `snapshot` names `snapshot/save`."""
    return step == wanted or step.startswith((wanted + "[", wanted + "/"))


@dataclass(frozen=True)
class HostFacts:
    platform: str = "linux"
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    path: str | None = None
    sha256: str | None = None
    description: str = ""
    rules: tuple[Rule, ...] = ()
    hosts: Mapping[str, HostFacts] = field(default_factory=dict)
    manual: Mapping[str, str] = field(default_factory=dict)  # under --auto: manual steps' answers by id

    def rule_for(self, step: str | None, host: str, script: str) -> Rule | None:
        return next((r for r in self.rules if r.matches(step, host, script)), None)

    def facts(self, host: str) -> HostFacts:
        return self.hosts.get(host, HostFacts())


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def default_path(runbook: Path) -> Path:
    """`NAME.rehearsal.yml` beside `NAME.yml`: the scenario used when none is named."""
    return runbook.with_name(runbook.name.rsplit(".", 1)[0] + ".rehearsal.yml")


def read(path: Path, display: str | None = None) -> Scenario:
    """Load and check a scenario; every problem is raised together (`InvalidRunbook`, exit 2)."""
    document = load(path, display)
    data, positions = document.data, document.positions
    cls = jsonschema.Draft202012Validator
    validator = cls(schema(), format_checker=cls.FORMAT_CHECKER)
    if problems := locate(validator.iter_errors(data), positions, data):
        raise InvalidRunbook(problems)
    rules = tuple(
        _rule(i, raw, positions.of(("answers", i)).line) for i, raw in enumerate(data.get("answers", []))
    )
    hosts = {
        name: HostFacts(facts.get("platform", "linux"), tuple(facts.get("missing", ())))
        for name, facts in data.get("hosts", {}).items()
    }
    manual = dict(data.get("manual", {}))
    return Scenario(display or str(path), document.sha256, data.get("description", ""), rules, hosts, manual)


def _rule(index: int, raw: Mapping[str, Any], line: int) -> Rule:
    answers = tuple(_answer(a) for a in raw.get("sequence", [raw]))
    hosts = tuple(raw.get("hosts", [raw["host"]] if "host" in raw else []))
    command = re.compile(raw["command"]) if "command" in raw else None
    return Rule(index, line, answers, raw.get("step"), command, hosts)


def _answer(raw: Mapping[str, Any]) -> Answer:
    duration = seconds(raw["duration"]) if "duration" in raw else 0.0
    return Answer(raw.get("exit", 0), raw.get("stdout", ""), raw.get("stderr", ""), duration)
