"""Safe YAML loading that keeps where every value came from.

PyYAML's safe loader forgets positions and silently accepts duplicate keys, so we compose the node graph
ourselves: plain Python values come out together with a `Positions` map from JSON path to line and column,
and every construct a runbook must not use (duplicate keys, anchors and aliases, tags, tabs) is reported at
its line. Everything found is reported at once; only a syntax error stops the scan early.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import InvalidRunbook, Problem

JsonPath = tuple[str | int, ...]
MAX_DEPTH = 50
"""Mappings and lists inside each other: far beyond any runbook, far below Python's recursion limit."""

NUL = "\x00"
NUL_MESSAGE = (
    "a NUL character (\\0) is not allowed: no command, argument, environment value or file name can hold one"
)

try:  # the C parser is ~5x faster; the marks it reports are the same
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


def format_path(path: JsonPath) -> str:
    """`("steps", 2, "run")` → `steps[2].run`, the way users read paths."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column, and the scalar exactly as written (to suggest fixes like quoting)."""

    line: int
    column: int
    source: str | None = None
    block: bool = False


@dataclass
class Positions:
    """Where each value (and each mapping key) of a loaded document stands in its file."""

    file: str
    values: dict[JsonPath, Mark] = field(default_factory=dict)
    keys: dict[JsonPath, Mark] = field(default_factory=dict)

    def of(self, path: JsonPath, *, key: bool = False) -> Mark:
        """The mark of `path`, or of its closest located ancestor when the path does not exist (a missing key)."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            mark = table.get(path[:end]) or self.values.get(path[:end])
            if mark:
                return mark
        return Mark(1, 1)

    def problem(self, path: JsonPath, message: str, *, key: bool = False) -> Problem:
        mark = self.of(path, key=key)
        return Problem(self.file, mark.line, mark.column, format_path(path), message)


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: its data, positions, raw text (for the sha256 and line lookups)."""

    path: Path
    data: Any
    positions: Positions
    text: str

    @functools.cached_property
    def sha256(self) -> str:
        """Identifies the exact file a plan, a journal or a checklist was made from."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def _mark(node: yaml.Node) -> Mark:
    start = node.start_mark
    source = node.value if isinstance(node, yaml.ScalarNode) else None
    block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
    return Mark(start.line + 1, start.column + 1, source, block)


class _Builder:
    """Turns a composed node graph into plain values, recording positions and refused constructs."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")
        self._built: set[int] = set()

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        if isinstance(node, yaml.CollectionNode):
            # An alias composes to the very node it names; walking it again would expand it, and nine
            # levels of nine aliases (a "billion laughs") exhaust memory. The event scan has refused it.
            if id(node) in self._built:
                return None
            self._built.add(id(node))
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        try:
            value = self._scalars.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError):
            # An explicit tag (already reported by `_event_problems`), or text PyYAML takes for an impossible
            # date (`2001-13-45`): keep the text as written.
            value = node.value
        if isinstance(value, str) and NUL in value:
            self._refuse(node, path, NUL_MESSAGE)
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._refuse(key_node, path, "merge keys (<<) are not allowed; write the keys out")
                continue
            # Keys are read as written: YAML 1.1 would turn `on:` (a step's target) into True.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self._refuse(key_node, path, "mapping keys must be plain strings")
                continue
            if NUL in key:
                self._refuse(key_node, path, NUL_MESSAGE)
                continue
            child = (*path, key)
            if key in result:
                first = self.positions.keys[child]
                self._refuse(key_node, child, f"duplicate key {key!r} (first defined at line {first.line})")
                continue
            self.positions.keys[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _refuse(self, node: yaml.Node, path: JsonPath, message: str) -> None:
        mark = _mark(node)
        self.problems.append(Problem(self.positions.file, mark.line, mark.column, format_path(path), message))


def _event_problems(text: str, file: str) -> list[Problem]:
    """Anchors, aliases and explicit tags, found on the event stream before composing resolves them away;
    nesting deeper than `MAX_DEPTH` stops the scan (every later phase walks the data recursively)."""
    problems: list[Problem] = []
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        mark = event.start_mark
        where = (file, mark.line + 1, mark.column + 1, "") if mark else (file, 1, 1, "")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep; a runbook never needs that"
                raise InvalidRunbook([*problems, Problem(*where, message)])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent):
            problems.append(Problem(*where, f"alias *{anchor} is not allowed; repeat the value instead"))
        elif anchor:
            problems.append(
                Problem(*where, f"anchor &{anchor} is not allowed; runbooks are read as plain data")
            )
        if _explicit_tag(event):
            tag = _shown_tag(getattr(event, "tag"))  # noqa: B009 - not every event type declares .tag
            problems.append(
                Problem(*where, f"tag {tag} is not allowed; remove it (quote the value for a string)")
            )
    return problems


def _explicit_tag(event: yaml.Event) -> bool:
    if isinstance(event, yaml.ScalarEvent):
        return event.tag is not None and not any(event.implicit)
    if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
        return event.tag is not None and not event.implicit
    return False


def _shown_tag(tag: str) -> str:
    """`tag:yaml.org,2002:python/object` → `!!python/object`, as the author wrote it."""
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _tab_problems(text: str, file: str) -> list[Problem]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            column = indent.index("\t") + 1
            problems.append(
                Problem(file, number, column, "", "tab in indentation; YAML indents with spaces only")
            )
    return problems


def read_text(path: Path, display: str) -> str:
    """The file's text, refusing what cannot be a runbook (missing, binary, not UTF-8, empty)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidRunbook([Problem(display, 0, 0, "", f"cannot read: {error.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        message = f"not UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        raise InvalidRunbook([Problem(display, line, 1, "", message)]) from None
    if not text.strip() or all(ln.strip().startswith("#") or not ln.strip() for ln in text.splitlines()):
        raise InvalidRunbook([Problem(display, 1, 1, "", "the file is empty")])
    return text


def parse(text: str, display: str) -> tuple[Any, Positions]:
    """Plain data and positions from YAML text; every refused construct raised together."""
    try:
        problems = _event_problems(text, display)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        # PyYAML never takes a tab for indentation, so the lines it got past hold tabs only inside text (a
        # block scalar's content, which may be a heredoc with tabs). At the failing line a tab is the cause.
        syntax = _syntax_problem(error, display, text)
        tabs = [p for p in _tab_problems(text, display) if p.line >= syntax.line]
        raise InvalidRunbook(tabs + ([] if any(p.line == syntax.line for p in tabs) else [syntax])) from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow anywhere (a control character)
        before = text[: error.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        message = f"character U+{error.character:04X} is not allowed in YAML; remove it"
        raise InvalidRunbook([Problem(display, line, column, "", message)]) from None
    positions = Positions(display)
    if node is None or (
        isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style
    ):  # `---` alone
        raise InvalidRunbook([Problem(display, 1, 1, "", "the file is empty")])
    builder = _Builder(positions)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as error:
        raise InvalidRunbook([*problems, _syntax_problem(error, display)]) from None
    problems += builder.problems
    if problems:
        raise InvalidRunbook(_sorted(problems))
    return data, positions


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems), key=lambda p: (p.line, p.column, p.message))


def _syntax_problem(error: yaml.MarkedYAMLError, file: str, text: str = "") -> Problem:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = error.problem or error.context or "invalid YAML"
    start = error.context_mark
    if error.problem and error.context and start is not None:  # say where the unfinished construct began
        message += f" ({error.context} started at line {start.line + 1}, column {start.column + 1})"
    return Problem(file, line, column, "", f"YAML syntax error: {message}{_quote_it(error, text)}")


def _quote_it(error: yaml.MarkedYAMLError, text: str) -> str:
    """The two traps of a plain (unquoted) value, with the fix: `: ` inside it, a backquote or `@` first."""
    mark, problem = error.problem_mark, error.problem or ""
    if problem.startswith("mapping values are not allowed"):
        return (
            "; a ': ' inside an unquoted value reads as a new key: quote the whole value "
            '(title: "Note: this") or write it as a block (|)'
        )
    found = text[mark.index : mark.index + 1] if mark is not None else ""
    if problem.startswith("found character") and found in ("`", "@"):
        return f"; an unquoted value cannot start with {found!r}: quote the whole value ('{found}…')"
    return ""


def load(path: Path, display: str | None = None) -> Document:
    """Load a runbook (or any YAML file a runbook reads) with positions, or raise every problem found."""
    display = display or str(path)
    text = read_text(path, display)
    data, positions = parse(text, display)
    return Document(path, data, positions, text)
