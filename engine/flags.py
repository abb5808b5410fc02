"""Flags declared once: an option dataclass's fields carry their command-line metadata.

An option is a field of a frozen, keyword-only dataclass made with `option(...)` (a flag) or `argument(...)`
(a positional): its name, type and default are the field's, its help and placeholder the `Flag` in its
metadata (nox's `_option_set.Option`, pip's `cmdoptions`). Both front ends are generated from those fields:
`add_arguments` for `runbook`'s argparse parser, `invoke_arguments` for the invoke tasks. And both turn what
they parsed into the dataclass through `build`, the one place a value is converted and checked (a choice
is a `StrEnum`: a wrong one is a usage error naming the choices, whichever front end read it).

Light on purpose: `runbook validate` imports it, so it imports neither invoke nor argparse at module level.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from invoke.parser.argument import Argument
    from invoke.tasks import Task

T = TypeVar("T")
_KEY = "flag"
POSITIONAL = "positional_"
"""The dest prefix of a flag's optional positional twin (`Flag.also_positional`)."""


@dataclass(frozen=True, kw_only=True)
class Flag:
    """What the command line needs of one option field, besides its name, type and default."""

    help: str
    metavar: str | None = None  # the value's placeholder; default: the choices (`text|json`) or NAME
    name: str | None = None  # the flag, when not the field's name dashed (`from_step` → `--from`)
    short: str | None = None  # a one-letter flag too (`-o`)
    positional: bool = False  # an argument, not a flag
    also_positional: bool = False  # `runbook` takes it as an optional argument too (pyinvoke/invoke#159)
    bare: str | None = None  # the value when the flag comes without one (`--resume` → "latest")


def option(
    default: Any,
    *,
    help: str,
    metavar: str | None = None,
    name: str | None = None,
    short: str | None = None,
    also_positional: bool = False,
    bare: str | None = None,
) -> Any:
    """A flag: `--NAME VALUE`, a switch when the field is a bool, repeatable when it is a tuple."""
    flag = Flag(
        help=help, metavar=metavar, name=name, short=short, also_positional=also_positional, bare=bare
    )
    return dataclasses.field(default=default, metadata={_KEY: flag})


def argument(*, help: str, metavar: str) -> Any:
    """A positional argument (required; one or more when the field is a tuple)."""
    return dataclasses.field(metadata={_KEY: Flag(help=help, metavar=metavar, positional=True)})


@dataclass(frozen=True)
class Spec:
    """One option field as a front end reads it: the field, its `Flag`, its value's kind and default."""

    field: str
    flag: Flag
    kind: type  # str, int, bool, tuple (repeatable) or a StrEnum (its members are the choices)
    default: Any

    @property
    def dashed(self) -> str:
        return self.flag.name or self.field.replace("_", "-")

    @property
    def invoke_key(self) -> str:
        """The keyword invoke passes the value as: its flag with underscores (its help looks it up so)."""
        return self.dashed.replace("-", "_")

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(m.value for m in self.kind) if issubclass(self.kind, enum.Enum) else ()

    @property
    def metavar(self) -> str:
        return self.flag.metavar or "|".join(self.choices) or self.dashed.upper()

    @property
    def names(self) -> list[str]:
        return [*(f"-{s}" for s in [self.flag.short] if s), f"--{self.dashed}"]

    def value(self, given: Any, command: str) -> Any:
        """What was given, as the field holds it; a value outside the choices is the operator's mistake."""
        if self.kind is tuple:  # invoke gives a positional one value (its parser has no "one or more")
            return (given,) if isinstance(given, str) else tuple(given or ())
        if given is True and self.flag.bare is not None:
            return self.flag.bare
        if given is None or not self.choices:
            return given
        try:
            return self.kind(given)
        except ValueError:
            where = command if self.flag.positional else f"--{self.dashed}"
            raise UsageError(f"{where} {given!r}: choose one of {', '.join(self.choices)}") from None


@functools.cache
def specs(options: type) -> tuple[Spec, ...]:
    """The option fields of a dataclass, in order (fields without a `Flag` are not on the command line)."""
    hints = typing.get_type_hints(options)
    return tuple(
        Spec(f.name, f.metadata[_KEY], _kind(hints[f.name]), f.default)
        for f in dataclasses.fields(options)
        if _KEY in f.metadata
    )


def _kind(hint: Any) -> type:
    """`X | None` → X; `tuple[str, ...]` → tuple."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = typing.get_origin(hint) or hint
    assert isinstance(kind, type), hint
    return kind


def build(options: type[T], given: Mapping[str, Any], command: str) -> T:
    """The option dataclass from what a front end parsed (by field name; a field not given keeps its default)."""
    read = specs(typing.cast(type, options))
    return options(**{s.field: s.value(given[s.field], command) for s in read if s.field in given})


def add_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    """The options' arguments on an argparse parser: each field's flag, placeholder, help and default."""
    for spec in specs(options):
        flag = spec.flag
        if flag.positional:
            many: dict[str, Any] = {"nargs": "+"} if spec.kind is tuple else {}
            parser.add_argument(spec.field, metavar=spec.metavar, help=flag.help, **many)
            continue
        settings: dict[str, Any] = {"dest": spec.field, "help": flag.help}
        if spec.kind is bool:
            parser.add_argument(*spec.names, action="store_true", default=spec.default, **settings)
            continue
        settings.update(metavar=spec.metavar, default=None if spec.kind is tuple else spec.default)
        if spec.kind is tuple:
            settings["action"] = "append"
        if flag.bare is not None:
            settings.update(nargs="?", const=flag.bare)
        if spec.kind is int:
            settings["type"] = int
        parser.add_argument(*spec.names, **settings)
        if flag.also_positional:
            parser.add_argument(
                f"{POSITIONAL}{spec.field}", nargs="?", metavar=spec.metavar, help=f"same as --{spec.dashed}"
            )


def invoke_arguments(options: type) -> list[Argument]:
    """The options as invoke's parser arguments: the same flags, help and defaults as `add_arguments`."""
    from invoke.parser.argument import Argument

    return [
        Argument(
            names=[spec.dashed, *([spec.flag.short] if spec.flag.short else [])],
            kind=list
            if spec.kind is tuple and not spec.flag.positional
            else spec.kind
            if spec.kind in (bool, int)
            else str,
            default=_invoke_default(spec),
            help=spec.flag.help,
            positional=spec.flag.positional,
            optional=spec.flag.bare is not None,
            attr_name=spec.invoke_key if spec.invoke_key != spec.dashed else None,  # no alias of itself
        )
        for spec in specs(options)
    ]


def task(
    name: str, doc: str, options: tuple[type, ...], call: Callable[[Any, dict[str, Any]], None]
) -> Task[Any]:
    """An invoke task whose arguments are the options' fields (not a function's signature); it calls
    `call(context, given)` with what was given by field name, as `build` takes it."""
    from invoke.tasks import Task

    class OptionTask(Task[Any]):
        def __init__(self, body: Callable[..., Any], **kwargs: Any) -> None:
            super().__init__(body, **kwargs)
            self.options = options  # whence its arguments (tests/test_cli_flags.py checks every task's)

        def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
            return [argument for o in options for argument in invoke_arguments(o)]

    def body(c: Any, **given: Any) -> None:
        call(c, {s.field: given[s.invoke_key] for o in options for s in specs(o) if s.invoke_key in given})

    body.__doc__ = doc
    return OptionTask(body, name=name, positional=[], auto_shortflags=False)


def developer_task(function: Callable[[Any, T], None]) -> Task[Any]:
    """tasks.py's own tasks: `function(c, options)`, its flags the fields of `options`' dataclass."""
    options = typing.get_type_hints(function)[list(inspect.signature(function).parameters)[1]]
    name = function.__name__

    def call(c: Any, given: dict[str, Any]) -> None:
        function(c, build(options, given, name))

    return task(name, inspect.getdoc(function) or "", (options,), call)


def _invoke_default(spec: Spec) -> Any:
    if spec.flag.positional:
        return None
    if spec.kind is tuple:
        return []
    return spec.default.value if isinstance(spec.default, enum.Enum) else spec.default


@dataclass(frozen=True)
class RunbookFile:
    """The argument every runbook-reading command takes first (here, not in `engine.options`: `validate`
    reads it without the planning modules)."""

    file: str = argument(help="The runbook file (YAML).", metavar="FILE")
