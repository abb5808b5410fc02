"""Sandboxed jinja2 rendering, with every `{{ }}` in a command shell-quoted unless marked `| raw`.

Quoting by default works like HTML autoescaping: an operator's value such as `x; touch /tmp/p` reaches
the command as one word. Secret values never enter a command's text at all: they render as a reference
to an environment variable (`"${RUNBOOK_SECRET_TOKEN}"`) that the executor fills in without putting the
value on any command line. Values only known while running (`steps.<id>.stdout`) render as visible
placeholders in a plan and for real in the run.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError

from engine import bounds
from engine.errors import InvalidRunbook, Problem
from engine.loading import NUL, NUL_MESSAGE, format_path
from engine.masking import MASK, Masker
from engine.model import Template
from engine.sandbox import BoundedSandbox

OMIT = "\x00omit\x00"


class Raw(str):
    """A value the author asked to insert unquoted (`| raw`)."""


@dataclass(frozen=True)
class SecretRef:
    """Stands for a secret value: an environment reference in commands, a mask everywhere else."""

    name: str

    @property
    def env(self) -> str:
        return f"RUNBOOK_SECRET_{self.name.upper()}"

    def __str__(self) -> str:
        return MASK


class Deferred:
    """A value known only once earlier steps have run; renders as a visible placeholder in plans."""

    def __init__(
        self, expression: str, paper: Mapping[str, int] | None = None, step: str | None = None
    ) -> None:
        self.expression = expression
        self.paper = paper  # on paper (a checklist): step id → number, for a blank to fill in
        self.step = step  # the step it comes from, once known (`steps.<id>`)

    def _read(self, expression: str, key: object) -> Deferred:
        step = self.step or (key if self.expression == "steps" and isinstance(key, str) else None)
        return Deferred(expression, self.paper, step)

    def __getattr__(self, name: str) -> Deferred:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._read(f"{self.expression}.{name}", name)

    def __getitem__(self, key: object) -> Deferred:
        return self._read(f"{self.expression}[{key!r}]", key)

    def shown(self, expressions: tuple[str, ...]) -> tuple[Deferred, ...]:
        """Placeholders for whole expressions over these values (`steps.a.stdout | trim`), each knowing the
        step it reads first, for a checklist's "from step N"."""
        return tuple(Deferred(e, self.paper, _first_step(e)) for e in expressions)

    def __str__(self) -> str:
        if self.paper is not None:  # a person writes the value in while following the checklist
            number = self.paper.get(self.step or "")
            return f"________ (from step {number})" if number else "________"
        return f"<{self.expression}: known at run time>"


class Missing(jinja2.StrictUndefined):
    """A key that is not there (`item.ssh_key_path` of an inventory entry without its own key): false as a
    condition, so `item.ssh_key_path or inventory.ssh_key_path` and `when: item.enabled` read as written, and
    an error wherever its value would be used or shown (no empty word in a command from a typo)."""

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]  # jinja types it as always raising
        return False


_STEP_READ = re.compile(r"\bsteps(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def _first_step(expression: str) -> str | None:
    match = _STEP_READ.search(expression)
    return (match.group(1) or match.group(2)) if match else None


def _raw(value: Any) -> Raw:
    if isinstance(value, SecretRef):
        return Raw(f"${{{value.env}}}")
    return Raw(value if isinstance(value, str) else _plain(value))


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        bounds.shown(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


LATER = (
    "__later__"  # the placeholders of a plan-time render: `{{ __later__[0] }}` (not a name authors can write)
)
_RAW_OR_OUTPUT = re.compile(
    r"(\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\})|(\{#.*?#\})|\{\{(-?)(.*?)(-?)\}\}", re.S
)


@functools.lru_cache(maxsize=4096)
def _later_form(text: str) -> tuple[str, tuple[str, ...]]:
    """The template with each `{{ expression }}` that reads `steps` replaced by its placeholder, and those
    expressions: before the run, `{{ steps.a.stdout.split('|')[1] }}` is shown as that expression, never
    evaluated over a placeholder's text (which would fail the plan, or show a wrong value). Line breaks
    inside an expression are kept, so an error's line stays right."""
    later: list[str] = []

    def replace(match: re.Match[str]) -> str:
        inner = match.group(4)
        if inner is None or "steps" not in _names_of(inner):
            return match.group(0)
        later.append(" ".join(inner.split()))
        newlines = "\n" * inner.count("\n")
        return f"{{{{{match.group(3)} {LATER}[{len(later) - 1}]{newlines} {match.group(5)}}}}}"

    return _RAW_OR_OUTPUT.sub(replace, text), tuple(later)


def _names_of(expression: str) -> frozenset[str]:
    try:
        return names_used("{{ " + expression + " }}")
    except jinja2.TemplateSyntaxError:
        return frozenset()


STARTED = datetime.datetime.now(datetime.UTC)


def now(format: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    """`{{ now('%Y%m%d-%H%M') }}`: the time this command started, UTC, formatted (strftime).

    One instant per invocation, so the plan, the commands re-rendered during the run and the texts all
    name the same snapshot, however long the run takes.
    """
    return STARTED.strftime(format)


def _from_json(value: Any) -> Any:
    """`result.stdout | from_json`: a command's JSON output as values (an error says what was not JSON)."""
    text = str(value)
    try:
        return json.loads(text)
    except ValueError as error:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ValueError(f"from_json: not JSON ({error.args[0]}): {shown!r}") from None


def _shell_finalize(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, SecretRef):
        return f'"${{{value.env}}}"'
    if isinstance(value, Deferred):
        return str(value)
    return shlex.quote(_plain(value))


def _text_finalize(value: Any) -> str:
    return _plain(value) if not isinstance(value, (Raw, SecretRef, Deferred)) else str(value)


@functools.cache
def environment(shell: bool) -> jinja2.Environment:
    """One sandboxed environment per kind (shell commands, plain text), built once."""
    env = BoundedSandbox(
        undefined=Missing,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_shell_finalize if shell else _text_finalize,
        # jinja's optimizer folds constant expressions at compile time: a third of each compile (~0.4 ms a
        # template), for templates rendered a few times per process; it also rewrites the syntax tree that
        # `parse` shares between linting and both environments. The output is the same without it.
        optimized=False,
    )
    env.filters["raw"] = _raw
    env.filters["quote"] = lambda v: Raw(shlex.quote(_plain(v)))
    env.filters["from_json"] = _from_json
    env.globals["omit"] = OMIT
    env.globals["now"] = now
    return env


@functools.lru_cache(maxsize=8192)
def parse(text: str) -> nodes.Template:
    """A template's syntax tree, parsed once for linting, name lookup and compiling alike."""
    return environment(False).parse(text)


@functools.lru_cache(maxsize=8192)
def _compile(text: str, shell: bool) -> jinja2.Template:
    return environment(shell).from_string(parse(text))


@functools.lru_cache(maxsize=8192)
def every_node(text: str) -> tuple[nodes.Node, ...]:
    """Every node of a template's syntax tree, in document order: one walk of the tree, shared by the name
    lookup and the lint checks that each look for a few kinds (each `find_all` walks the whole tree again)."""
    return tuple(parse(text).find_all(nodes.Node))


_SPECIAL_NAMES = frozenset({"loop", "super", "self", "varargs", "kwargs", "caller"})


@functools.lru_cache(maxsize=8192)
def names_used(text: str) -> frozenset[str]:
    """The context names a template reads (empty for plain text): decides per-host or deferred rendering.

    A walk over the syntax tree: names read minus names the template sets itself. jinja's own
    `meta.find_undeclared_variables` is exact about scoping but generates code to get there, which
    costs more than the render on large runbooks; runbook templates do not shadow names.
    """
    if "{" not in text:
        return frozenset()
    found = [n for n in every_node(text) if isinstance(n, nodes.Name)]
    stored = {n.name for n in found if n.ctx != "load"}
    return frozenset(n.name for n in found if n.ctx == "load") - stored - _SPECIAL_NAMES


def template_problem(template: Template, message: str, line_in_template: int = 1) -> Problem:
    """A problem located at the line inside the template where it happened (block scalars start a line lower)."""
    mark = template.mark
    line = mark.line + (line_in_template - 1) + (1 if mark.block else 0)
    column = mark.column if line == mark.line else 1
    return Problem(template.file, line, column, format_path(template.path), message)


def render(template: Template, context: Mapping[str, Any], *, shell: bool = False) -> str:
    """Render one template; an undefined name or sandbox violation becomes a located `InvalidRunbook`."""
    if template.is_static:
        return template.text
    compiled = _compile(template.text, shell)
    steps = context.get("steps")
    if isinstance(steps, Deferred) and "steps" in names_used(template.text):
        text, later = _later_form(template.text)
        compiled, context = _compile(text, shell), {**context, LATER: steps.shown(later)}
    try:
        # `shared=True` skips jinja's per-render merge of its globals ChainMap (a third of planning time).
        scope = compiled.new_context({**environment(shell).globals, **context}, shared=True)
        text = "".join(
            bounds.joined(compiled.root_render_func(scope), what="the rendered text")
        )  # bounded as it grows
        if NUL not in text or text.strip() == OMIT:  # `omit` is the engine's own NUL-marked word
            return text
        problem = template_problem(template, f"the rendered text holds a NUL: {NUL_MESSAGE}")
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as error:
        # besides jinja's own errors, what a template's expression can raise: `{{ 1/0 }}`, `{{ 'a' + 1 }}`
        problem = template_problem(template, _render_message(error), _failing_line(compiled, error))
    raise InvalidRunbook([problem]) from None


def _render_message(error: Exception) -> str:
    if isinstance(error, jinja2.UndefinedError):
        return f"undefined: {error.message}"
    if isinstance(error, bounds.TooLarge):
        return f"too large: {error}"
    if isinstance(error, (SecurityError, OverflowError)):  # OverflowError: the sandbox's limit on range()
        return f"not allowed in the sandbox: {error}"
    return f"template error: {error}"


def _failing_line(compiled: jinja2.Template, error: BaseException) -> int:
    """The line of the template an error happened at, from the innermost frame of its compiled code."""
    line, frame = 1, error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == "<template>":
            line = compiled.get_corresponding_lineno(frame.tb_lineno)
        frame = frame.tb_next
    return line


def evaluate(template: Template, context: Mapping[str, Any], hidden: Iterable[str] = ()) -> Any:
    """A bare expression (`when:`, a rule's `assert:`), evaluated in the same sandbox.

    `hidden`: secret values the context holds (a condition may read a secret, since it prints nothing); an
    error's message may quote a value it read, so they are masked in it."""
    try:
        return _expression(template.text)(**context)
    except jinja2.UndefinedError as error:
        message = f"undefined: {error.message}"
    except bounds.TooLarge as error:
        message = f"too large: {error}"
    except (
        SecurityError,
        jinja2.TemplateError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
    ) as error:
        message = f"invalid expression: {error}"
    raise InvalidRunbook([template_problem(template, Masker(hidden).mask(message))]) from None


@functools.lru_cache(maxsize=8192)
def _expression(text: str) -> TemplateExpression:
    """A bare expression, compiled once per process: a `when` is evaluated for every host it runs on, an
    inventory's `where` for every entry, an `until` after every attempt (each compile costs ~1 ms)."""
    return environment(False).compile_expression(text)


_WHOLE_NAME = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")


def whole_reference(text: str) -> str | None:
    """`"{{ token }}"` → `token`: a value that is exactly one variable (an `env:` value may be a secret so)."""
    match = _WHOLE_NAME.fullmatch(text.strip())
    return match.group(1) if match else None


def secrets_in(script: str, secrets: Mapping[str, SecretRef]) -> tuple[str, ...]:
    """Which secret environment variables a rendered script refers to (only those are passed to it)."""
    return tuple(ref.env for ref in secrets.values() if f"${{{ref.env}}}" in script)
