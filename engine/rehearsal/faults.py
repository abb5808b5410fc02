"""Faults a rehearsal injects, as the flags write them: `--fail STEP[@HOST][=EXIT]`, `--lose STEP@HOST`,
`--kill-at STEP`. Each names steps of the plan (a loop's id names each item, a using step's id each step of
the used runbook); one that names none is the operator's mistake, refused before anything runs."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import UsageError
from engine.rehearsal.scenario import step_named

_SPEC = re.compile(r"(?P<step>[^@=\s]+)(?:@(?P<host>[^@=\s]+))?(?:=(?P<exit>[0-9]{1,3}))?")


class Kind(enum.Enum):
    FAIL = "--fail"
    LOSE = "--lose"
    KILL = "--kill-at"


@dataclass(frozen=True)
class Fault:
    kind: Kind
    step: str
    host: str | None = None
    exit: int = 1

    def hits(self, step: str | None, host: str) -> bool:
        return step is not None and step_named(self.step, step) and self.host in (None, host)

    def __str__(self) -> str:
        where = f"@{self.host}" if self.host else ""
        code = f"={self.exit}" if self.kind is Kind.FAIL and self.exit != 1 else ""
        return f"{self.kind.value} {self.step}{where}{code}"


def parse(fail: Iterable[str], lose: Iterable[str], kill_at: str | None) -> tuple[Fault, ...]:
    faults = [_one(Kind.FAIL, spec) for spec in fail]
    faults += [_one(Kind.LOSE, spec) for spec in lose]
    if kill_at:
        faults.append(_one(Kind.KILL, kill_at))
    return tuple(faults)


def _one(kind: Kind, spec: str) -> Fault:
    match = _SPEC.fullmatch(spec.strip())
    if match is None or (kind is not Kind.FAIL and match["exit"]):
        raise UsageError(f"{kind.value} {spec!r}: write {_FORMS[kind]}")
    if kind is Kind.LOSE and not match["host"]:
        raise UsageError(f"{kind.value} {spec!r}: name the host whose connection drops: STEP@HOST")
    code = int(match["exit"]) if match["exit"] else 1
    if not 1 <= code <= 255:
        raise UsageError(f"{kind.value} {spec!r}: the exit code of a failure is 1-255")
    return Fault(kind, match["step"], match["host"], code)


_FORMS = {Kind.FAIL: "STEP, STEP@HOST or STEP@HOST=EXIT", Kind.LOSE: "STEP@HOST", Kind.KILL: "STEP"}


def check(faults: Iterable[Fault], steps: Iterable[str], hosts: Iterable[str]) -> None:
    """Refuse a fault that names no command step (or host) of the plan: it would silently rehearse nothing
    (a manual step runs no command to fail; its answer is the scenario's `manual`, or the person's)."""
    steps, hosts = list(steps), set(hosts)
    for fault in faults:
        if not any(step_named(fault.step, s) for s in steps):
            raise UsageError(f"{fault}: no command step {fault.step!r}; command steps: {', '.join(steps)}")
        if fault.host is not None and fault.host not in hosts:
            raise UsageError(f"{fault}: no host {fault.host!r}; hosts: {', '.join(sorted(hosts))}")
