"""Picking a run up where it stopped: which run, what finished, and whether the runbook changed since.

The journal is the only truth: a step and host that reported `ok` is done; one that started and never
reported an end is *unknown* and is run again only when someone says so (`--rerun-unknown`, or a yes).
A command killed by Ctrl-C or SIGTERM did end, but half-way: whatever it changed before it died is as
unknown as after a crash, so an `interrupted` outcome is treated as unknown too ("resume works the same").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.journal import JOURNAL_NAME, Journal, Record, read_journal, run_directory
from engine.outcomes import RunStatus, Status
from engine.planning import sha256_text
from engine.runs import latest_unfinished, outcomes
from engine.stillrunning import Group, groups

LATEST = "latest"


@dataclass(frozen=True)
class Previous:
    run_id: str
    directory: Path
    values: dict[str, Any]
    outcomes: dict[tuple[str, str], Status]  # (step, host) → its last state; INTERRUPTED reads as UNKNOWN
    sha256: str
    text: str | None  # the runbook as it was run (secrets masked), to show what changed
    uses: tuple[tuple[str, str], ...] = ()  # (using step, sha256) of each runbook it used
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)  # unknown ones' process groups

    def reopen(self, state_dir: Path) -> Journal:
        return Journal.reopen(state_dir, self.run_id)

    def report(self, order: Iterable[str]) -> list[str]:
        """What the resume will do, for the operator: done, to run again, unknown (asked first)."""
        rank = {step: index for index, step in enumerate(order)}
        keys = sorted(self.outcomes, key=lambda key: (rank.get(key[0], len(rank)), key))
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
            found = [f"{step}@{host}" for step, host in keys if belongs(self.outcomes[(step, host)])]
            if found:
                lines.append(f"  {label}: {', '.join(found)}")
        return lines


def find(state_dir: Path, runbook_name: str, which: str) -> Previous:
    """The run to resume: the latest unfinished one of this runbook, or the one named."""
    if which == LATEST:
        summary = latest_unfinished(state_dir, runbook_name)
        if summary is None:
            raise UsageError(f"no unfinished run of {runbook_name!r} in {state_dir} to resume")
        run_id = summary.run_id
    else:
        run_id = which
    directory = run_directory(state_dir, run_id)
    if not (directory / JOURNAL_NAME).is_file():
        raise UsageError(f"--resume {run_id}: no such run in {state_dir}")
    records = read_journal(directory / JOURNAL_NAME)
    header = records[0] if records and records[0].get("type") == Record.RUN else {}
    if header.get("runbook", {}).get("name") != runbook_name:
        raise UsageError(
            f"--resume {run_id}: that run is of {header.get('runbook', {}).get('name')!r}, "
            f"not {runbook_name!r}"
        )
    if records[-1].get("type") == Record.RUN_END and records[-1].get("status") == RunStatus.OK:
        raise UsageError(f"--resume {run_id}: that run finished well; there is nothing to resume")
    saved = directory / "runbook.yml"
    found: dict[tuple[str, str], Status] = {
        key: Status.UNKNOWN if status is Status.INTERRUPTED else status
        for key, status in outcomes(records).items()
    }
    return Previous(
        run_id,
        directory,
        dict(header.get("variables", {})),
        found,
        header.get("runbook", {}).get("sha256", ""),
        saved.read_text(encoding="utf-8") if saved.is_file() else None,
        tuple(
            (str(u.get("step")), str(u.get("sha256"))) for u in header.get("uses", []) if isinstance(u, dict)
        ),
        {key: group for key, group in groups(records).items() if found.get(key) is Status.UNKNOWN},
    )


def changed_uses(previous: Previous, today: Iterable[tuple[str, str, str]], force: bool) -> str | None:
    """Refuse (unless forced) a resume whose used runbooks (`use:`) changed since the run began."""
    now = {step: (path, sha) for step, path, sha in today}
    then = dict(previous.uses)
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
