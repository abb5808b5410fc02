"""The validated runbook as frozen values: what the file says, before any variable is known.

Built only from data the schema has accepted, so construction never has to second-guess types. Templates
stay templates here (`Template` keeps the text and where it stands); rendering them is `rendering`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.loading import Document, JsonPath, Mark

LOCAL = "local"
PLATFORMS = ("linux", "darwin", "windows")
DEFAULT_SHELL = "sh"
DEFAULT_CONCURRENCY = 10
DEFAULT_CHECK_TIMEOUT = 60.0


@dataclass(frozen=True)
class Template:
    """A templated string and the place it was written, so render errors point at the file."""

    text: str
    path: JsonPath
    mark: Mark
    file: str = ""

    @property
    def is_static(self) -> bool:
        return "{{" not in self.text and "{%" not in self.text and "{#" not in self.text


@dataclass(frozen=True)
class Variable:
    """`variables.<name>`: the JSON Schema fragment its value must pass (`schema`), its default if the file
    gives one (`has_default` tells a default of null apart from none), and whether it is required or secret."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    default: Any = None
    has_default: bool = False
    required: bool = False
    secret: bool = False

    @property
    def type(self) -> str:
        return str(self.schema.get("type", "string"))


@dataclass(frozen=True)
class Reach:
    """How to reach each host of an SSH target, as templates rendered per host (or per inventory entry):
    one per setting written, keyed by `hostsettings.Reach`'s field names (the one list of settings)."""

    written: tuple[tuple[str, Template], ...] = ()

    def get(self, setting: str) -> Template | None:
        return next((template for name, template in self.written if name == setting), None)

    def templates(self) -> tuple[Template, ...]:
        return tuple(template for _, template in self.written)


@dataclass(frozen=True)
class Hop:
    """One jump host on the way to a target's hosts: its address and its own way of being reached."""

    host: Template
    reach: Reach


@dataclass(frozen=True)
class Jump:
    """The jump hosts: written as `-J`-like text (`jump_text`), or as hops with their own settings."""

    text: Template | None = None
    hops: tuple[Hop, ...] = ()

    def templates(self) -> tuple[Template, ...]:
        found = [self.text] if self.text is not None else []
        for hop in self.hops:
            found += [hop.host, *hop.reach.templates()]
        return tuple(found)


@dataclass(frozen=True)
class Inventory:
    """An SSH inventory read from a YAML file at plan time (`from_file` + `each`, filtered by `where`)."""

    from_file: Template
    each: str
    host: Template
    where: Template | None = None
    name: Template | None = None  # each entry's display name (plan, summary, journal); `host` is connected to


@dataclass(frozen=True)
class Target:
    """`targets.<name>`: this machine (`local`), or SSH hosts listed (`hosts`) or read from an inventory,
    with how they are reached and how many run a step at once."""

    name: str
    local: bool
    hosts: tuple[Template, ...] = ()
    inventory: Inventory | None = None
    concurrency: int | None = None
    reach: Reach = field(default_factory=Reach)
    jump: Jump = field(default_factory=Jump)
    may_be_unreachable: bool = False  # a host that cannot be reached at preflight: its steps are skipped


@dataclass(frozen=True)
class Retries:
    """`retries:` of a step: how many times a failed command is tried again, and the pause before each try."""

    count: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class Confirm:
    """Ask before a step: a y/n question, or make the operator type `typed` exactly.

    `question` is the author's (a template, rendered when the step is reached); None asks the engine's own.
    """

    question: Template | None = None
    typed: Template | None = None


@dataclass(frozen=True)
class Approval:
    """`approval:` on a step: how many distinct other operators must approve it (`required`, a template
    so that a variable may give it: 0 says knowingly that nobody else needs to), from which roles (`from_`;
    empty: any operator), how long the run waits (`timeout`; None: until approved, rejected or stopped), and
    the `allowed_signers` file that vouches for SSH signatures on a run kept on files."""

    required: Template
    from_: tuple[str, ...] = ()
    timeout: float | None = None
    allowed_signers: Template | None = None


@dataclass(frozen=True)
class Expect:
    """`expect:` of a step: what counts as success (exit codes; text its standard output must hold or match)."""

    exit_codes: tuple[int, ...] = (0,)
    stdout_contains: str | None = None
    stdout_matches: str | None = None


@dataclass(frozen=True)
class Record:
    """`record:` of a manual step: what the operator is asked to type, and the value it must equal or match."""

    prompt: Template
    equals: Template | None = None
    matches: str | None = None


@dataclass(frozen=True)
class Command:
    """`run` as written: one script, or one per platform (`default` for the rest)."""

    variants: tuple[tuple[str, Template], ...]

    def for_platform(self, platform: str) -> Template | None:
        table = dict(self.variants)
        return table.get(platform) or table.get("default") or table.get("*")

    @property
    def per_platform(self) -> bool:
        return self.variants[0][0] != "*"


@dataclass(frozen=True)
class Check:
    """A preflight check: a command that must succeed on its target before the first step runs."""

    title: str
    run: Command
    on: str = LOCAL
    cwd: Template | None = None
    timeout: float = DEFAULT_CHECK_TIMEOUT
    index: int = 0
    only_before_start: bool = False  # true before the first step only (skipped once a resumed run had one)


@dataclass(frozen=True)
class Loop:
    """`loop:` as written: literal items, or an expression over the values giving them; `var` names each."""

    items: tuple[Any, ...] = ()
    expression: Template | None = None
    var: str = "item"


@dataclass(frozen=True)
class Use:
    """`use:` another runbook from a step, `with:` its values (templates over this runbook's values).

    `runbook` is the used file's own validated model, filled in by validation once the file is read.
    """

    path: Template  # as written: relative to the using runbook's directory
    file: Path
    with_: tuple[tuple[str, Any], ...] = ()  # a string value is a Template, any other the YAML value
    runbook: Runbook | None = None


@dataclass(frozen=True)
class Step:
    """One step as written (`index`: its place in its list of steps), every key's default filled in; a
    group's inner steps are in `steps`."""

    index: int
    id: str
    title: str
    on: str = LOCAL
    run: Command | None = None
    manual: Template | None = None
    record: Record | None = None
    description: str = ""
    cwd: Template | None = None
    env: tuple[tuple[str, Template], ...] = ()
    shell: str = DEFAULT_SHELL
    when: Template | None = None
    confirm: Confirm | None = None
    approval: Approval | None = None
    timeout: float | None = None
    retries: Retries = field(default_factory=Retries)
    continue_on_error: bool = False
    expect: Expect = field(default_factory=Expect)
    result: Template | None = None
    concurrency: int | None = None
    max_failed_hosts: int = 0
    requires: tuple[str, ...] = ()
    run_once: bool = False
    until: Template | None = None  # a bare expression over `result`: the attempt succeeded when it is true
    deadline: float | None = None  # seconds from the first attempt after which none starts (and one is cut)
    loop: Loop | None = None
    use: Use | None = None
    steps: tuple[Step, ...] = ()  # a group's steps (`steps:`), run in order for each item and batch
    serial: int | str | None = None  # a group's batch size over its target's hosts: a count or "25%"
    group_on: bool = False  # a group that rolls over its target (`on:` written): inner steps default to it

    @property
    def is_group(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class Rule:
    """`{assert: <expression over the values>, message: <text>}`: refused with the message when false."""

    condition: Template
    message: Template


@dataclass(frozen=True)
class Runbook:
    """The whole file, validated: its document (text, sha256, marks), variables, targets, checks and steps."""

    document: Document
    format: int
    name: str
    version: str
    title: str
    description: str
    source: str
    warnings: tuple[str, ...]
    variables: tuple[Variable, ...]
    targets: tuple[Target, ...]
    checks: tuple[Check, ...]
    steps: tuple[Step, ...]
    default_concurrency: int = DEFAULT_CONCURRENCY
    rules: tuple[Rule, ...] = ()

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def context(self) -> dict[str, str]:
        """`runbook` in templates: its name, version, and `dir`, the directory of its file (absolute), for
        paths written relative to the runbook rather than to where the run starts."""
        return {"name": self.name, "version": self.version, "dir": str(self.document.path.resolve().parent)}

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value: float | int | str) -> float:
    """`30`, `"30s"`, `"10m"` → seconds (the schema has checked the form)."""
    if isinstance(value, (int, float)):
        return float(value)
    number, unit = re.fullmatch(r"([0-9.]+)([a-z]+)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def retries(value: int | dict[str, Any] | None) -> Retries:
    if value is None:
        return Retries()
    if isinstance(value, int):
        return Retries(value)
    return Retries(value["count"], seconds(value.get("delay", 0)))
