"""Picking a run up where it stopped: which run, what finished, and whether the runbook changed since.

The journal is the only truth: a step and host that reported `ok` is done; one that started and never
reported an end is *unknown* and is run again only when someone says so (`--rerun-unknown`, or a yes).
A command killed by Ctrl-C or SIGTERM did end, but half-way: whatever it changed before it died is as
unknown as after a crash, so an `interrupted` outcome is treated as unknown too ("resume works the same").

What carries over: a finished step's output, exit code and status (later templates read `steps.<id>`), and
an open series of attempts (`retries`, `deadline`): a series cut short continues with its next attempt and
its deadline counted from its first attempt; a series that ended (ok, or failed after its last attempt)
starts afresh, since resuming it is the operator's decision to try again. A series whose deadline passed
while no engine ran starts afresh too, said on the terminal.

Loop items are matched by value (as `opening.loops` recorded them): a resume whose items changed is refused
unless `--force`; an item whose outcome is unknown (its first copy may still run) must stay in the list,
forced or not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from engine.errors import UsageError
from engine.history import HostHistory, Key, RunHistory, fold, moved
from engine.outcomes import HostOutcome, RunStatus, Status
from engine.planning import Plan, sha256_text
from engine.records import Loops, ProcessGroup
from engine.state.base import StateBackend

LATEST = "latest"


@dataclass(frozen=True)
class Carried:
    """An open series of attempts a resume continues: attempts already made, seconds since it began."""

    made: int = 0
    elapsed: float = 0.0
    note: str = ""  # why an open series starts afresh after all


@dataclass(frozen=True)
class Previous:
    run_id: str
    history: RunHistory
    text: str | None  # the runbook as it was run (secrets masked), to show what changed
    hosts: Mapping[Key, HostHistory] = field(default_factory=dict)  # by today's loop items
    changes: tuple[str, ...] = ()  # what changed in the loop items (a forced resume)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.history.header.variables)

    @property
    def sha256(self) -> str:
        return self.history.header.runbook.sha256

    def status(self, key: Key) -> Status | None:
        """The last known state; INTERRUPTED reads as UNKNOWN."""
        found = self.hosts.get(key)
        if found is None:
            return None
        return Status.UNKNOWN if found.status is Status.INTERRUPTED else found.status

    def group(self, key: Key) -> ProcessGroup | None:
        """The process group of an unknown step, to check before it runs again."""
        found = self.hosts.get(key)
        return found.group if found is not None and self.status(key) is Status.UNKNOWN else None

    def done(self, key: Key, reason: str) -> HostOutcome:
        """A step finished in the resumed run, with what it printed and returned (as journaled, masked)."""
        step, host = key  # a loop item's id may have moved since (`match_items`)
        return replace(
            self.hosts[key].outcome, step=step, host=host, status=Status.DONE_BEFORE, reason=reason
        )

    def carried(self, key: Key, deadline: float | None, now: datetime | None = None) -> Carried:
        """The open series of `key` to continue; none (a new series) when its deadline has passed."""
        found = self.hosts.get(key)
        series = found.series if found is not None else ()
        if not series:
            return Carried()
        made = series[-1].attempt - (1 if series[-1].cut else 0)  # a cut attempt is made again
        began = _moment(series[0].started or series[0].ended)
        elapsed = ((now or datetime.now(UTC)) - began).total_seconds() if began else 0.0
        if deadline is not None and elapsed >= deadline:
            return Carried(
                note=f"its deadline ({deadline:g}s from the first attempt) passed before this resume: "
                "a new series of attempts"
            )
        return Carried(made, max(elapsed, 0.0))

    def report(self, order: Iterable[str]) -> list[str]:
        """What the resume will do, for the operator: done, to run again, unknown (asked first)."""
        rank = {step: index for index, step in enumerate(order)}
        keys = sorted(self.hosts, key=lambda key: (rank.get(key[0], len(rank)), key))
        groups: list[tuple[str, Callable[[Status], bool]]] = [
            ("finished, not run again", lambda status: status.finished_well),
            ("failed, run again", lambda status: status.ran_and_failed),
            (
                "outcome unknown (started, never finished well), asked before running again",
                lambda status: status is Status.UNKNOWN,
            ),
        ]
        lines = [f"resuming run {self.run_id}"]
        for label, belongs in groups:
            found = [
                f"{step}@{host}" for step, host in keys if belongs(self.status((step, host)) or Status.OK)
            ]
            if found:
                lines.append(f"  {label}: {', '.join(found)}")
        return lines + [f"  loop items changed (--force, matched by value): {c}" for c in self.changes]


def _moment(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def find(state: StateBackend, runbook_name: str, which: str) -> Previous:
    """The run to resume: the latest unfinished one of this runbook, or the one named."""
    if which == LATEST:
        summary = state.newest(runbook_name)
        if summary is None or summary.status == RunStatus.OK:
            raise UsageError(f"no unfinished run of {runbook_name!r} in {state.location} to resume")
        run_id = summary.run_id
    else:
        run_id = which
    records = state.records(run_id)
    if records is None:
        raise UsageError(f"--resume {run_id}: no such run in {state.location}")
    history = fold(records)
    if history.runbook.name != runbook_name:
        shown = history.runbook.name if history.header.run_id else None
        raise UsageError(f"--resume {run_id}: that run is of {shown!r}, not {runbook_name!r}")
    if history.ok:
        raise UsageError(f"--resume {run_id}: that run finished well; there is nothing to resume")
    return Previous(run_id, history, state.runbook_copy(run_id), history.hosts)


def _canonical(items: Loops) -> str:
    return json.dumps({step: list(values) for step, values in items.items()}, sort_keys=True, default=str)


def match_items(previous: Previous, today: Loops, force: bool) -> Previous:
    """Refuse (unless forced) a resume whose loop items changed; forced, each item keeps its own outcome
    (matched by value, not position). An unknown item that left the list is refused even when forced: its
    first copy may still run, and the run could never end well without it."""
    before = previous.history.loops
    if before is None or _canonical(before) == _canonical(today):
        return previous  # unchanged, or a journal older than loop values: matched by position
    changes = _describe(before, today)
    what = f"the loop items changed since run {previous.run_id} began: {'; '.join(changes)}"
    if not force:
        raise UsageError(
            f"{what}; resuming could skip an item or run one again. Resume with the same items, or pass "
            "--force to match the items by value"
        )
    places = moved(before, today)
    unknown = [
        f"{step}@{host}"
        for (step, host) in previous.hosts
        if places.get(step, "") is None and previous.status((step, host)) is Status.UNKNOWN
    ]
    if unknown:
        raise UsageError(
            f"{what}; the outcome of {', '.join(unknown)} is unknown (its command may still run): keep its "
            "item in the list to settle it first"
        )
    hosts = {}
    for (step, host), found in previous.hosts.items():
        where = places.get(step, step)
        if where is not None:
            hosts[(where, host)] = found
    return replace(previous, hosts=hosts, changes=tuple(changes))


def _describe(before: Loops, after: Loops) -> list[str]:
    """`rotate: new "d", gone "a", moved "b" (rotate[2] → rotate[1])` for each step whose items changed."""
    lines = []
    for step in sorted(set(before) | set(after)):
        old, new = {step: before.get(step, ())}, {step: after.get(step, ())}
        if _canonical(old) == _canonical(new):
            continue
        parts = [f"new {_shown(new[step], unit)}" for unit, to in moved(new, old).items() if to is None]
        for unit, to in moved(old, new).items():
            shown = _shown(old[step], unit)
            parts.append(f"gone {shown}" if to is None else f"moved {shown} ({unit} → {to})")
        lines.append(f"{step}: {', '.join(parts)}")
    return lines


def _shown(values: Sequence[Any], unit: str) -> str:
    """The value of the item `unit` (`rotate[2]`) of `values`."""
    return json.dumps(values[int(unit.rsplit("[", 1)[1][:-1]) - 1], ensure_ascii=False, default=str)


def changed_uses(previous: Previous, today: Iterable[tuple[str, str, str]], force: bool) -> str | None:
    """Refuse (unless forced) a resume whose used runbooks (`use:`) changed since the run began."""
    now = {step: (path, sha) for step, path, sha in today}
    then = {use.step: use.sha256 for use in previous.history.header.uses}
    changed = [
        f"{step} ({now[step][0] if step in now else 'no longer used'})"
        for step in sorted(set(now) | set(then))
        if then.get(step) != (now[step][1] if step in now else None)
    ]
    if not changed:
        return None
    what = f"the runbook(s) used by {', '.join(changed)} changed since run {previous.run_id} began"
    if not force:
        raise UsageError(f"{what}; resuming could skip or repeat the wrong steps. Review, then pass --force")
    return what


def moved_hosts(previous: Previous, plan: Plan, force: bool) -> str | None:
    """Refuse (unless forced) a resume once ~/.ssh/config sends a host name elsewhere than when the run
    started; what moved, when forced. A journal older than the record has none to check."""
    recorded = previous.history.header.resolution
    if recorded is None or not plan.remote_hosts():
        return None
    from engine import reviewing

    try:
        reviewing.check_resolution(plan, recorded, f"--resume {previous.run_id}", "when the run started")
    except UsageError as error:
        if not force:
            raise UsageError(f"{error} (--force resumes anyway)") from None
        return str(error)
    return None


def check_unchanged(
    previous: Previous, text: str, force: bool, mask: Callable[[str], str] = lambda text: text
) -> str | None:
    """Refuse (unless forced) a runbook that changed since the run began; returns the diff shown.

    `mask` hides secrets the runbook itself holds (a secret's default), in the diff and the error alike.
    """
    if sha256_text(text) == previous.sha256:
        return None
    import difflib  # only for a changed runbook's diff (~2 ms of every start)

    diff = "".join(
        difflib.unified_diff(
            mask(previous.text or "").splitlines(True),
            mask(text).splitlines(True),
            f"runbook as run ({previous.run_id})",
            "runbook now",
            n=1,
        )
    )
    diff = diff or "(the copy kept with the run is missing or masked: no line-by-line difference to show)\n"
    if not force:
        raise UsageError(
            f"the runbook changed since run {previous.run_id} began; resuming could skip or repeat "
            f"the wrong steps. Review the change, then pass --force to resume anyway:\n{diff}"
        )
    return diff
