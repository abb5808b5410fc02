"""The jinja sandbox templates run in: jinja's immutable sandbox, with every operation that can build more than
it was given checked against `engine.bounds` first.

jinja offers the hooks: intercepted operators go through `call_binop`, every call through `call`, and
`str.format` through `wrap_str_format`; the filters and globals that build text or lists are wrapped here, and
`~` (which jinja compiles to a plain join) gets a code generator that joins through the bounds as well.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from jinja2 import filters, nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from engine import bounds

_LONGEST_LIPSUM_WORD = 16  # characters of jinja's longest lorem ipsum word, with its space and punctuation


class _Generator(CodeGenerator):
    """`a ~ b` joins through `environment.bounded_concat`, so its size is known before it is built."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - jinja's name
        self.write("environment.bounded_concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja's immutable sandbox; what a template builds is bounded (`engine.bounds`)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _Generator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["lipsum"] = _lipsum
        self.filters.update(
            center=_center,
            indent=_indent,
            join=_join,
            replace=_replace,
            format=_format,
            batch=_batch,
            slice=_slice,
            string=_string,
            tojson=_tojson,
            wordwrap=_wordwrap,
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        bounds.binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            args = _checked_str_call(__obj.__self__, __obj.__name__, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        form = str(value.__self__)

        def checked(*args: Any, **kwargs: Any) -> str:
            bounds.widths(form, [*args, *kwargs.values()])
            return wrapped(*args, **kwargs)

        return checked

    @staticmethod
    def bounded_concat(parts: tuple[Any, ...]) -> str:
        return "".join(bounds.joined(parts))


def _checked_str_call(
    value: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """A string method that builds text: its size first (`join` gets its parts as a list, read once)."""
    if name in ("ljust", "rjust", "center", "zfill") and args:
        bounds.padded(value, args[0])
    elif name == "replace" and len(args) >= 2:
        bounds.replaced(value, str(args[0]), str(args[1]), args[2] if len(args) > 2 else kwargs.get("count"))
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        bounds.text(
            len(value) + value.count("\t") * max(size if isinstance(size, int) else 0, 0), "'expandtabs'"
        )
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        bounds.text(len(value) * max(longest, 1), "'translate'")
    elif name == "join" and args:
        return (bounds.joined(args[0], value), *args[1:])
    return args


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    bounds.items(n, "lipsum's paragraphs")
    bounds.text(n * max * _LONGEST_LIPSUM_WORD, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


def _center(value: str, width: int = 80) -> str:
    bounds.padded(str(value), width)
    return filters.do_center(value, width)


def _indent(value: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    margin = len(width) if isinstance(width, str) else width
    bounds.text(len(str(value)) + (str(value).count("\n") + 1) * max(margin, 0), "'indent'")
    return filters.do_indent(value, width, first, blank)


@pass_eval_context
def _join(context: Any, value: Any, separator: str = "", attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(filters.make_attrgetter(context.environment, attribute), value)
    return str(separator).join(bounds.joined(value, str(separator)))


@pass_eval_context
def _replace(context: Any, value: Any, old: str, new: str, count: int | None = None) -> str:
    bounds.replaced(str(value), str(old), str(new), count)
    return filters.do_replace(context, value, old, new, count)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    bounds.widths(str(value), [*args, *kwargs.values()], star="*")
    return filters.do_format(value, *args, **kwargs)


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None:
        bounds.items(linecount, "'batch'")
    return filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Any:
    bounds.items(slices, "'slice'")
    return filters.sync_do_slice(value, slices, fill_with)


def _string(value: Any) -> str:
    bounds.shown(value)
    return str(value)


@pass_eval_context
def _tojson(context: Any, value: Any, indent: int | None = None) -> Any:
    """Every item may stand on a line of its own, indented: `indent` counts once per item it shows."""
    bounds.text(bounds.shown(value) * (1 + max(indent or 0, 0)), "'tojson'")
    return filters.do_tojson(context, value, indent)


@pass_environment
def _wordwrap(environment: Any, value: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
    """Each line break may insert the wrap string (`wrapstring`, the 4th argument)."""
    wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
    text = str(value)
    breaks = (
        len(text) // max(width if isinstance(width, int) else 1, 1) + text.count(" ") + text.count("\n") + 1
    )
    bounds.text(len(text) + breaks * len(str(wrap)), "'wordwrap'")
    return filters.do_wordwrap(environment, value, width, *args, **kwargs)
