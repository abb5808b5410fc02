"""`runbook rehearse FILE`: the runbook run by the real engine against simulated hosts; then its report.

The run is `runbook run`'s own pipeline (values, rules, plan, warnings, checks, steps, journal, summary)
with the rehearsal's `Stage` in place of local and SSH hosts: nothing runs, nothing connects. Its journal
is kept under `STATE_DIR/rehearsals`, so `runbook run --resume` never finds it, its lock is never a real
run's, and `runbook runs` lists it as a rehearsal. `--kill-at STEP` stops the engine there as if it were
killed, then resumes the run as an operator would, so the report shows the resume path too.

The engine's own output goes to standard error; the report to `-o FILE` or standard output. The exit code
is the (last) run's, as `runbook run` would have ended: a drill whose faults fail the run exits 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from engine.commands import run as running
from engine.errors import RunbookError, UsageError
from engine.flags import option
from engine.history import fold
from engine.options import Options, prepare
from engine.rehearsal import faults as faults_mod
from engine.rehearsal import report, scenario
from engine.rehearsal.stage import Killed, Stage
from engine.state import StateBackend, rehearsals
from engine.state.files import FileState


@dataclass(frozen=True, kw_only=True)
class RehearseOptions:
    scenario: str | None = option(
        None,
        help="What the simulated hosts answer (default: NAME.rehearsal.yml beside the runbook, if there).",
        metavar="FILE",
    )
    fail: tuple[str, ...] = option(
        (),
        help="Make a step fail (on one host; with this exit code, default 1); repeatable.",
        metavar="STEP[@HOST][=EXIT]",
    )
    lose: tuple[str, ...] = option(
        (),
        help="Drop the connection to a host during a step: its outcome is unknown; repeatable.",
        metavar="STEP@HOST",
    )
    kill_at: str | None = option(
        None, help="Stop the engine at this step as if killed, then resume the run.", metavar="STEP"
    )
    auto: bool = option(
        False,
        help="Answer warnings, confirmations, manual steps and re-runs with their expected answers (manual "
        "steps: the scenario's, if it has one) (default: the person at the terminal answers, as in a real run).",
    )
    output: str | None = option(
        None,
        help="Write the report here (.md or .html) instead of standard output.",
        metavar="FILE",
        short="o",
    )
    state_dir: str | None = option(
        None,
        help="Where runs are kept (default: $RUNBOOK_STATE_DIR or ./.runbook); rehearsals go under "
        "its rehearsals/ directory.",
        metavar="DIR",
    )


def main(options: Options, rehearse: RehearseOptions) -> int:
    kind = report.kind_of(rehearse.output)  # a wrong extension is refused before anything runs
    file = Path(options.file)
    named = Path(rehearse.scenario) if rehearse.scenario else scenario.default_path(file)
    script = scenario.read(named) if rehearse.scenario or named.is_file() else scenario.Scenario()
    faults = faults_mod.parse(rehearse.fail, rehearse.lose, rehearse.kill_at)
    _validated, plan = prepare(options, allow_missing=True)
    hosts = {h.host.name for s in plan.steps for h in s.hosts}
    faults_mod.check(faults, [s.id for s in plan.steps if s.manual is None], hosts)
    manual = [s.id for s in plan.steps if s.manual is not None]
    if unknown := [step for step in script.manual if step not in manual]:
        listed = ", ".join(manual) or "none"
        raise UsageError(f"{named}: manual: no manual step {unknown[0]!r}; manual steps: {listed}")
    stage = Stage(script, faults)
    state = rehearsals(Path.cwd(), rehearse.state_dir)
    settings = running.RunOptions(
        yes=rehearse.auto,
        confirm_manual=rehearse.auto,
        rerun_unknown=rehearse.auto,
        scripted=script.manual if rehearse.auto else {},
    )
    before = _latest(state, plan.runbook.name)
    code, resumed = _rehearse(options, settings, stage, state, plan.runbook.name)
    run_id = resumed or _latest(state, plan.runbook.name)
    if run_id is None or run_id == before:  # stopped before its journal began (a held lock, bad values)
        raise code if isinstance(code, RunbookError) else UsageError("the rehearsal left no journal")
    directory = _kept(state, run_id, stage)
    print(
        f"(a rehearsal: nothing was executed; kept in {directory}, never continued by `run --resume`)",
        file=sys.stderr,
    )
    run = fold(state.records(run_id) or [])
    text = report.render(report.Facts(plan, stage, run, rehearse.auto, faults), kind)
    if rehearse.output:
        Path(rehearse.output).write_text(text, encoding="utf-8")
        print(f"report written to {rehearse.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return code if isinstance(code, int) else code.exit_code


CALLS = "rehearsal.json"
"""In the rehearsal's run directory: every command the simulated hosts were asked, and how each was answered."""


def _kept(state: FileState, run_id: str, stage: Stage) -> Path:
    """The run's directory, where the stage's log of calls is kept beside the journal."""
    directory = state.directory(run_id)
    (directory / CALLS).write_text(stage.document(), encoding="utf-8")
    return directory


def _rehearse(
    options: Options, settings: running.RunOptions, stage: Stage, state: StateBackend, name: str
) -> tuple[int | RunbookError, str | None]:
    """The run (and its resume after `--kill-at`): its exit code, or the error it stopped on (the report
    is still written); the id of the resumed run, if one was."""
    resumed = None
    try:
        try:
            return running.execute(options, settings, state, stage, sys.stderr), None
        except Killed as killed:
            print(f"\n{killed}; resuming the run, as the operator would", file=sys.stderr)
            resumed = _latest(state, name)
            stage.next_run()
            return running.execute(
                options, replace(settings, resume=resumed), state, stage, sys.stderr
            ), resumed
    except RunbookError as error:
        print(f"error: {error}", file=sys.stderr)
        return error, resumed


def _latest(state: StateBackend, name: str) -> str | None:
    summary = state.newest(name)
    return None if summary is None else summary.run_id
