"""What templates read of the steps that ran (`steps.<id>`) and of an `until`'s attempt (`result`): types whose
attributes are exactly the documented ones.

A plain dict would not do: jinja reads `steps.rotate.items` as the dict's `items` method before the key, so a
documented `steps.rotate.items[0].stdout` stopped a run half-way, and a step named `keys` or `update` could not
be read at all. Here `steps` and `hosts` are mappings whose only attributes are their keys (a step id or a
host name), and a step's result is a frozen value with its fields and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """`result` in an `until`: one attempt's output."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class HostResult(Attempt):
    """`steps.<id>.hosts.<host name>`: the step on one host."""

    status: str = ""


class Named(Generic[T]):
    """A read-only mapping whose attributes are its keys and nothing else (`steps.items` is the step `items`).

    A stored value may still be the record the runner keeps (a dict); it becomes its type when read."""

    __slots__ = ("_convert", "_values")

    def __init__(self, values: Mapping[str, Any], convert: Any) -> None:
        self._values = values
        self._convert = convert

    def __getattr__(self, name: str) -> T:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> T:
        value = self._values[key]
        return value if not isinstance(value, Mapping) else self._convert(value)  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{{{', '.join(repr(k) for k in self._values)}}}"


@dataclass(frozen=True)
class StepResult(HostResult):
    """`steps.<id>`: the step's first host's output and status, every host's (`hosts`), and for a looped step
    every item's result in order (`items`), the last item's being the step's own."""

    hosts: Named[HostResult] = field(default_factory=lambda: Named({}, _host))
    items: tuple[StepResult, ...] = ()

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> StepResult:
        """From what the runner keeps of a step (`StepOutcome.context()`, with `items` for a loop)."""
        own = {f.name: record[f.name] for f in fields(HostResult) if f.name in record}
        items = tuple(i if isinstance(i, StepResult) else cls.of(i) for i in record.get("items", ()))
        return cls(**own, hosts=Named(record.get("hosts", {}), _host), items=items)


def _host(record: Mapping[str, Any]) -> HostResult:
    return HostResult(**{f.name: record[f.name] for f in fields(HostResult) if f.name in record})


def steps(known: Mapping[str, Any]) -> Named[StepResult]:
    """`steps` as templates read it, over the runner's records of the steps that ran (step id → record)."""
    return Named(known, StepResult.of)


STEP_FIELDS = frozenset(f.name for f in fields(StepResult))
HOST_FIELDS = frozenset(f.name for f in fields(HostResult))
ATTEMPT_FIELDS = frozenset(f.name for f in fields(Attempt))
