"""`runbook approve RUN_ID STEP`: another operator approves (or `--reject`s) a waiting step, from anywhere.

Shows the document the approval covers (per host the command, masked, its cwd, env names and timeout) and
its sha256, compares it with a reviewed plan if one is given (`--plan`), asks for the sha256's first
characters typed (`--yes` for scripts), then records the answer: on the shared state as this database
login (the database refuses the requester, non-operators, roles outside `from:` and a second answer), on
files as an SSH signature made with `--key`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from engine.approvals import document
from engine.approvals.desk import Desk, Request
from engine.commands.approvals import ApprovalsOptions
from engine.console import Terminal
from engine.errors import Declined, UsageError
from engine.flags import argument, option
from engine.masking import Masker
from engine.prompting import ATTEMPTS
from engine.records import Verdict
from engine.state import open_state
from engine.state.options import FROM_ENVIRONMENT, StateOptions

TYPED = 8
"""How many first characters of the document's sha256 an approver types."""


@dataclass(frozen=True, kw_only=True)
class ApproveOptions:
    run_id: str = argument(help="The waiting run (a unique beginning of its id is enough).", metavar="RUN_ID")
    step: str = argument(help="The step waiting for approval (its id).", metavar="STEP")
    yes: bool = option(False, help="Approve without the typed confirmation (scripts).")
    comment: str = option("", help="A comment kept with the approval.", metavar="TEXT")
    reject: bool = option(False, help="Reject instead: the waiting run stops before the step.")
    key: str | None = option(
        None, help="On files: your SSH private key, which signs the document.", metavar="FILE"
    )
    plan_file: str | None = option(
        None,
        help="A reviewed plan (`plan --save`): show how the step differs from it.",
        metavar="FILE",
        name="plan",
    )


def main(chosen: ApproveOptions, files: ApprovalsOptions, where: StateOptions = FROM_ENVIRONMENT) -> int:
    state = open_state(where.state, Path.cwd(), files.state_dir)
    try:
        desk = state.approvals()
        try:
            return _approve(desk, chosen)
        finally:
            desk.close()
    finally:
        state.close()


def _approve(desk: Desk, chosen: ApproveOptions) -> int:
    request = desk.find(chosen.run_id, chosen.step)
    if request is None:
        raise UsageError(f"no approval asked for run {chosen.run_id!r}, step {chosen.step!r} ({desk.where})")
    terminal = Terminal(Masker(()))
    _show(terminal, request, chosen.plan_file)
    verdict = Verdict.REJECTED if chosen.reject else Verdict.APPROVED
    if not chosen.yes and not _typed(terminal, request, verdict):
        raise Declined(f"not {verdict}: nothing recorded")
    key = Path(chosen.key).expanduser() if chosen.key else None
    given = desk.give(request, verdict, chosen.comment, key)
    terminal.say(f"{given.verdict} by {given.approver} at {given.given} — {given.proof}", "bold green")
    return 0


def _show(terminal: Terminal, request: Request, plan_file: str | None) -> None:
    who = f"members of {', '.join(request.from_)}" if request.from_ else "any operator"
    terminal.say(f"run {request.run_id} of {request.runbook}, step {request.step}", "bold")
    terminal.say(
        f"asked by {request.requester} since {request.since}: {request.required} approval(s) by {who}"
    )
    terminal.say(document.readable(request.document))
    terminal.say(f"document sha256 {request.sha256}", "bold")
    if plan_file is not None:
        from engine.approvals.reviewed import difference

        terminal.say(difference(request, Path(plan_file)), "yellow")


def _typed(terminal: Terminal, request: Request, verdict: Verdict) -> bool:
    """The sha256's first characters typed: the approver has the document they read in front of them."""
    wanted = request.sha256[:TYPED]
    word = "reject" if verdict is Verdict.REJECTED else "approve"
    for _ in range(ATTEMPTS):
        answer = terminal.ask(
            f"Type {wanted!r} (the sha256's first {TYPED} characters) to {word}, Enter to stop:"
        )
        if answer is None or answer == "":
            return False
        if answer.strip() == wanted:
            return True
        terminal.say(f"{answer!r} is not {wanted!r}", "yellow")
    print(f"not {word}d: {ATTEMPTS} wrong answers", file=sys.stderr)
    return False
