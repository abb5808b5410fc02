"""`runbook run FILE`: the main job, as a pipeline of phases, each able to stop the run.

find the run to resume (refused if the runbook changed, unless `--force`) → prepare the plan → check it
against a reviewed one → take the lock → open (or reopen) the journal → confirm the warnings → preflight
(exit 3, nothing ran) → steps → summary. The hosts are connected in the background from the moment the
plan is ready (`preflight.Connecting`); what that finds is reported at the preflight phase.

Exit codes: 0 every step succeeded, 1 a step or host failed (or was declined, or the journal could not be
written), 2 invalid input, a held lock or a changed runbook, 3 preflight failed, 130 (143 for SIGTERM)
interrupted. However the run ends, `main` writes its one `run-end` record; the status and code come from
the error it ended on (`engine.errors`).

A secret given with `--var` is refused (by `variables`, for every command), not warned about: by the time
we could warn, `ps` and the shell history have it already.
"""

from __future__ import annotations

import getpass
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from engine import opening, preflight, records, selecting, stillrunning
from engine.approvals.gating import OPEN, Asking, Checkpoint, gated
from engine.asking import Settings, yes_or_ask
from engine.console import Terminal
from engine.errors import (
    EXIT_OK,
    EXIT_STEP_FAILED,
    Declined,
    Interrupted,
    PreflightFailed,
    RunbookError,
    UsageError,
)
from engine.flags import option
from engine.fleet import Fleet
from engine.journal import new_run_id
from engine.masking import Masker
from engine.model import Runbook
from engine.options import Options, prepare
from engine.outcomes import HostOutcome, RunStatus, Status
from engine.planning import Plan, PlannedStep
from engine.records import AnsweredBy
from engine.running import Runner
from engine.state import RunWriter, StateBackend, open_state
from engine.state.options import FROM_ENVIRONMENT, StateOptions
from engine.transports import SSHOptions
from engine.validation import validate

if TYPE_CHECKING:
    from engine import resume
    from engine.executors.rehearsal import Stage


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    yes: bool = option(
        False, help="Answer yes to the warnings and to step confirmations (never to manual steps)."
    )
    confirm_manual: bool = option(
        False, help="Answer manual steps too, with their expected value; the journal says so."
    )
    plan_file: str | None = option(
        None,
        help="A plan saved by `plan --save`: refuse to start if today's rendering differs from it.",
        metavar="FILE",
        name="plan",
    )
    only: str | None = option(None, help="Run just this step (by id).", metavar="STEP")
    from_step: str | None = option(
        None, help="Start at this step (by id), skipping the ones before.", metavar="STEP", name="from"
    )
    state_dir: str | None = option(
        None, help="Where journals and locks live (default: $RUNBOOK_STATE_DIR or ./.runbook).", metavar="DIR"
    )
    resume: str | None = option(
        None,
        help="Continue the latest unfinished run of this runbook (--resume) or the run with this id.",
        metavar="RUN_ID",
        bare="latest",
    )
    rerun_unknown: bool = option(
        False, help="When resuming, run again steps whose outcome is unknown (started, never ended)."
    )
    if_still_running: stillrunning.IfStillRunning | None = option(
        None,
        help="When resuming, an unknown step's first copy still runs: wait for it to end, kill it "
        "(TERM, then KILL), or leave it and stop. Without it, the operator is asked.",
    )
    force: bool = option(False, help="Resume even though the runbook changed since the run began.")
    take_over: bool = option(
        False,
        help="With --resume: end the session of a lock holder whose heartbeat is stale (alive but silent: "
        "hung, or cut off) and take its lock; asks for the run id typed, and journals it (shared state).",
    )
    trust_new_host_keys: bool = option(
        False, help="Accept and remember SSH host keys not yet in known_hosts (never a changed key)."
    )
    break_glass: str | None = option(
        None, help="Approve approval: steps alone, for REASON (journaled).", metavar="REASON"
    )
    allowed_signers: str | None = option(
        None, help="On files: whose SSH signatures approve steps.", metavar="FILE"
    )
    scripted: Mapping[str, str] = field(default_factory=dict)  # not a flag: a rehearsal's manual answers


def main(options: Options, run: RunOptions, where: StateOptions = FROM_ENVIRONMENT) -> int:
    state = open_state(where.state, Path.cwd(), run.state_dir)
    try:
        return execute(options, run, state)
    finally:
        state.close()


def execute(
    options: Options,
    run: RunOptions,
    state: StateBackend,
    stage: Stage | None = None,
    out: IO[str] | None = None,
) -> int:
    """The run, kept in `state`; on a rehearsal's `stage` every host is its stand-in (chosen where
    executors are chosen: `preflight.connect`), and the terminal writes to `out`."""
    Asking(run.break_glass)  # a break-glass without a reason is refused before anything is locked
    validated = validate(Path(options.file), options.file)
    runbook = validated.runbook
    previous = None
    if run.resume:
        from engine import resume  # only a resume loads it, and the run history it reads

        previous = resume.find(state, runbook.name, run.resume)
        diff = resume.check_unchanged(
            previous, runbook.document.text, run.force, _defaults_masker(runbook).mask
        )
        if diff:
            print(f"--force: resuming although the runbook changed:\n{diff}", file=sys.stderr)
        options = replace(options, recorded=previous.values)
    validated, plan = prepare(options, validated=validated)
    if previous is not None:  # `resume` was imported above
        used = ((u.step, u.path, u.sha256) for u in plan.uses)
        if changed := resume.changed_uses(previous, used, run.force):
            print(f"--force: resuming although {changed}", file=sys.stderr)
        previous = resume.match_items(previous, opening.loops(plan), run.force)
        if moved := resume.moved_hosts(previous, plan, run.force):
            print(f"--force: resuming although {moved}", file=sys.stderr)
    if run.plan_file:
        from engine import reviewing  # only a run checked against a saved plan, or of SSH hosts, reads one

        reviewing.check(plan, Path(run.plan_file))
    steps = selecting.chosen(plan, run.only, run.from_step, resumed=previous is not None)
    if run.confirm_manual:
        selecting.answerable(steps, previous)
    terminal = Terminal(Masker(plan.values.secret_values()), out)
    run_id = previous.run_id if previous else new_run_id()
    wanted = preflight.wanted_hosts(plan, steps)  # a host with nothing to do is not reached
    options_ssh = SSHOptions(trust_new_keys=run.trust_new_host_keys)
    connecting = preflight.Connecting(plan, options_ssh, stage, wanted)
    if not run.trust_new_host_keys:  # else a run that stops before its preflight would change known_hosts
        connecting.start()  # waiting on the hosts goes on while the lock, journal and warnings are done
    try:
        return _locked(plan, steps, terminal, run, previous, state, run_id, connecting, stage is not None)
    finally:
        connecting.close()


def _locked(
    plan: Plan,
    steps: tuple[PlannedStep, ...],
    terminal: Terminal,
    run: RunOptions,
    previous: resume.Previous | None,
    state: StateBackend,
    run_id: str,
    connecting: preflight.Connecting,
    rehearsal: bool = False,
) -> int:
    """The run under its lock, with its journal: one `run-end` record however it ends."""
    runbook = plan.runbook
    if run.take_over and previous is None:
        raise UsageError("--take-over goes with --resume RUN_ID: it takes over that run")
    asking = None
    if run.take_over:
        from engine.takeover import TakeOverQuestion  # only `--take-over` asks it

        asking = TakeOverQuestion(terminal, run_id)
    answered = previous.history.approvals if previous else ()
    asking_approvals = Asking(run.break_glass, run.allowed_signers, answered, rehearsal)
    with (
        _signals() as caught,
        opening.opened(state, plan, run_id, terminal.masker, previous is not None, asking) as journal,
        gated(state, plan, steps, journal, terminal, asking_approvals) as gate,
    ):
        if asking is not None:
            asking.journal(journal, getpass.getuser())
        if journal.taken_over is not None:
            terminal.say(
                f"took over the lock left by {journal.taken_over.describe()}: that process is gone", "yellow"
            )
        terminal.say(f"run {journal.run_id} — {journal.where}", "dim")
        if previous is None and (left := opening.unfinished_before(state, runbook.name, run_id)) is not None:
            terminal.say(
                f"note: run {left.run_id} of this runbook did not finish ({left.status}); this is a new "
                f"run from the start. To continue that one instead: --resume {left.run_id}",
                "yellow",
            )
        ending: tuple[RunStatus, int] | None = None  # None: a bug; the journal says "unfinished"
        try:
            ending = _phases(plan, steps, terminal, journal, run, previous, connecting, gate)
            return ending[1]
        except (Interrupted, KeyboardInterrupt) as error:
            stop = Interrupted(str(error) or "interrupted", caught.get("signal", "SIGINT"))
            journal.append(records.interrupted(stop.signal))
            ending = (stop.run_status, stop.exit_code)
            terminal.say(str(stop), "bold yellow")
            if opening.started_a_step(state.records(journal.run_id)):  # else nothing ran: nothing to resume
                terminal.say(f"resume with: --resume {journal.run_id}", "yellow")
            return stop.exit_code
        except RunbookError as error:
            ending = (error.run_status, error.exit_code)
            raise
        finally:
            if ending is not None:
                journal.append(records.run_end(*ending))


def _defaults_masker(runbook: Runbook) -> Masker:
    """Masks what secrets a runbook file itself holds (their defaults), for diffs of it."""
    return Masker(str(v.default) for v in runbook.variables if v.secret and v.has_default)


def _phases(
    plan: Plan,
    steps: tuple[PlannedStep, ...],
    terminal: Terminal,
    journal: RunWriter,
    run: RunOptions,
    previous: resume.Previous | None,
    connecting: preflight.Connecting,
    gate: Checkpoint = OPEN,
) -> tuple[RunStatus, int]:
    """The phases of a run that got the lock and its journal; a phase stops the run by raising."""
    user = getpass.getuser()
    if previous is not None:
        _resumed(plan, terminal, journal, previous, user)
    if not _confirm_warnings(plan, terminal, journal, run.yes, user):
        terminal.say("not confirmed: nothing ran", "bold red")
        raise Declined("the warnings were not confirmed; nothing ran")
    started = previous is not None and any(h.status is not Status.SKIPPED for h in previous.hosts.values())
    fleet = _preflight(plan, terminal, connecting, started)
    try:
        runner = Runner(
            plan,
            fleet,
            terminal,
            journal,
            Settings(run.yes, run.confirm_manual, run.rerun_unknown, run.if_still_running, run.scripted),
            user,
            previous,
            gate,
        )
        return _steps(plan, steps, runner, terminal)
    finally:
        fleet.close()


def _preflight(plan: Plan, terminal: Terminal, connecting: preflight.Connecting, started: bool) -> Fleet:
    """Connected executors for every host, once every check passed; otherwise exit 3 with nothing run."""
    fleet = None
    try:
        fleet = connecting.fleet(terminal.say)
        preflight.check(plan, fleet, terminal.say, started)
        return fleet
    except PreflightFailed:
        if fleet is not None:
            fleet.close()
        raise


def _steps(
    plan: Plan, steps: tuple[PlannedStep, ...], runner: Runner, terminal: Terminal
) -> tuple[RunStatus, int]:
    """The steps, then the summary table (also when the run stops early); how the run ended."""
    order = {s.id: i for i, s in enumerate(plan.steps)}
    try:
        outcomes = runner.run(steps)
    finally:
        terminal.summary(sorted(runner.finished, key=lambda o: (order.get(o.step, 0), o.host)))
    # a failure the runbook tolerates (continue_on_error) ends the run ok, with a warning: nothing to fix
    may_fail = {s.id for s in steps if s.step.continue_on_error}
    tolerated = [o for o in runner.finished if o.status.ran_and_failed and o.step in may_fail]
    failed = [o for o in runner.finished if o.status.failed and o not in tolerated]
    ok = not failed and len(outcomes) == len(steps)
    if failed:
        terminal.say(f"run failed: {_names(failed)}; resume with --resume after fixing", "bold red")
    elif tolerated:
        terminal.say(
            f"run finished, with tolerated failures (continue_on_error): {_names(tolerated)}", "yellow"
        )
    else:
        terminal.say("run finished: every step succeeded", "bold green")
    return (RunStatus.OK, EXIT_OK) if ok else (RunStatus.FAILED, EXIT_STEP_FAILED)


def _names(outcomes: list[HostOutcome]) -> str:
    return ", ".join(sorted({f"{o.step}@{o.host}" for o in outcomes}))


def _resumed(
    plan: Plan, terminal: Terminal, journal: RunWriter, previous: resume.Previous, user: str
) -> None:
    """Say what the resume will do, and journal who resumed, with which values (changed ones are noted)."""
    for line in previous.report(s.id for s in plan.steps):
        terminal.say(line, "yellow")
    values = plan.values.masked()
    changed = sorted(
        name for name in values if name in previous.values and values[name] != previous.values[name]
    )
    if changed:
        terminal.say(
            f"note: resuming with other values than the run began with: {', '.join(changed)}", "yellow"
        )
    argv = [terminal.masker.mask(arg) for arg in sys.argv]
    left = journal.taken_over.describe() if journal.taken_over is not None else None
    journal.append(
        records.resumed(user, os.getpid(), values, argv, opening.loops(plan, terminal.masker), left)
    )


def _confirm_warnings(plan: Plan, terminal: Terminal, journal: RunWriter, yes: bool, user: str) -> bool:
    warnings = plan.warnings
    if not warnings:
        return True
    for warning in warnings:
        terminal.say(f"WARNING: {warning}", "bold red")
    question = "Have you read the warnings above, and do you want to go on?"
    ok, by = yes_or_ask(terminal, question, AnsweredBy.YES if yes else None)
    journal.append(records.confirmation(None, question, "yes" if ok else "no", user, by))
    return ok


@contextmanager
def _signals() -> Iterator[dict[str, Any]]:
    """SIGTERM behaves like Ctrl-C (the commands are killed and the journal says so), remembering which."""
    caught: dict[str, Any] = {}

    def on_term(signum: int, frame: Any) -> None:
        caught["signal"] = "SIGTERM"
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGTERM, previous)
