"""`runbook export ansible FILE -o DIR`: the plan as an Ansible playbook and inventory.

Refuses (exit 2, every place listed) a runbook using something the export cannot express, unless `--lossy`,
which writes a comment at each such place instead. Nothing is written when the export is refused, and the
two files are written together or not at all (`export.output`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.errors import InvalidRunbook, Problem, UsageError
from engine.export import unmapped
from engine.export.ansible import export
from engine.export.output import write_together
from engine.flags import argument, option
from engine.options import Options, prepare

PLAYBOOK, INVENTORY = "playbook.yml", "inventory.yml"


class Kind(StrEnum):
    ANSIBLE = "ansible"


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What to export to and where (before the runbook: `export ansible FILE -o DIR`)."""

    kind: Kind = argument(help="What to export to: ansible (a playbook and an inventory).", metavar="KIND")
    output: str | None = option(
        None, help="The directory to write to: playbook.yml and inventory.yml.", metavar="DIR", short="o"
    )


@dataclass(frozen=True, kw_only=True)
class ExportRunbook(Options):
    platform: str | None = option(
        None,
        help="Fix this machine's platform for local steps (default: chosen on the host at run time).",
    )
    lossy: bool = option(
        False,
        help="Export what can be expressed; write a comment at each place that cannot (default: refuse).",
    )


def main(chosen: ExportOptions, options: ExportRunbook) -> int:
    output = chosen.output
    if not output:
        raise UsageError(
            "-o/--output DIR is required: the directory to write playbook.yml and inventory.yml to"
        )
    _validated, plan = prepare(options, any_platform=options.platform is None, secrets_later=True)
    places = unmapped.find(plan)
    if places and not options.lossy:
        hint = (
            "cannot be exported to Ansible; --lossy exports the rest with a comment at each of these places"
        )
        raise InvalidRunbook([*(p.problem for p in places), Problem(options.file, 0, 0, "", hint)])
    files = export(plan, places)
    directory = Path(output)
    write_together(directory, {PLAYBOOK: files.playbook, INVENTORY: files.inventory})
    for place in places:
        print(f"not exported (--lossy): {place.problem}", file=sys.stderr)
    print(f"wrote {directory / PLAYBOOK} and {directory / INVENTORY}")
    print(f"run: ansible-playbook -i {directory / INVENTORY} {directory / PLAYBOOK}")
    return 0
