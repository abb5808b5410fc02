"""`runbook export ansible FILE -o DIR`: the plan as an Ansible playbook and inventory.

Refuses (exit 2, every place listed) a runbook using something the export cannot express, unless `--lossy`,
which writes a comment at each such place instead. Nothing is written when the export is refused, and the
two files are written together or not at all (`export.output`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.errors import InvalidRunbook, Problem, UsageError
from engine.export import unmapped
from engine.export.ansible import export
from engine.export.output import write_together
from engine.options import Options, prepare

KINDS = ("ansible",)
PLAYBOOK, INVENTORY = "playbook.yml", "inventory.yml"


def main(options: Options, kind: str, output: str | None, lossy: bool = False) -> int:
    if kind not in KINDS:
        raise UsageError(f"export {kind!r}: choose one of {', '.join(KINDS)}")
    if not output:
        raise UsageError(
            "-o/--output DIR is required: the directory to write playbook.yml and inventory.yml to"
        )
    _validated, plan = prepare(options, any_platform=options.platform is None, secrets_later=True)
    places = unmapped.find(plan)
    if places and not lossy:
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
