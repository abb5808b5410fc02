"""Executes a finished plan, step by step: fan-out, retries, and each step's outcome.

Every step and host is journaled before it starts and after it ends, whatever breaks an attempt off (an
output file that cannot be written, an engine error, Ctrl-C), so a crash at any moment leaves a record that
says what may have happened. Ctrl-C kills what runs (locally and on the nodes), records it, and leaves
through `Interrupted`.

The runner only executes, as pre-commit's `_run_hooks` and nox's `SessionRunner.execute` do: what a result
means is `judging`, asking people is `asking` (and, for approvals, `approvals.waiting`), which hosts run in
a resumed run is `resuming`, and what waits for the run is rendered through the plan's port, `Plan.renderer`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine import records, resulting, unrendered
from engine.approvals.gating import OPEN, Checkpoint
from engine.asking import Asker, Settings
from engine.attempts import Attempts
from engine.console import Terminal
from engine.errors import ConnectionFailed, Declined, Interrupted, InvalidRunbook, JournalError
from engine.executors import Result
from engine.fleet import Fleet
from engine.journal import OutputFile
from engine.judging import broken_off, judge, judge_step, stopped_waiting
from engine.known import Known
from engine.outcomes import HostOutcome, Status, StepOutcome
from engine.planning import HostPlan, Plan, PlannedStep
from engine.records import OPERATOR
from engine.rendering import SecretRef
from engine.resuming import Selection
from engine.rolling import Roll
from engine.state import RunWriter

if TYPE_CHECKING:
    from engine.resume import Previous  # a resume's: the module loads only for one


class _GroupRefused(Exception):
    """The journal refused a command's `process-group` record: the command never got its go (the rule is
    "go once the group is in the journal"); `error` is the journal's, raised on once the step has its end."""

    def __init__(self, error: JournalError) -> None:
        super().__init__(str(error))
        self.error = error


class Runner:
    """Runs the steps of one run's plan on the connected fleet; `finished` has every host outcome."""

    def __init__(
        self,
        plan: Plan,
        fleet: Fleet,
        terminal: Terminal,
        journal: RunWriter,
        settings: Settings,
        user: str,
        previous: Previous | None = None,
        gate: Checkpoint = OPEN,
    ) -> None:
        self.renderer, self.fleet, self.terminal, self.journal = plan.renderer, fleet, terminal, journal
        self.gate = gate  # four eyes: a step under `approval:` waits for its approvals before it runs
        self.asker = Asker(terminal, journal, user, settings)
        self.selection = Selection(previous, self.asker, fleet)
        self.known = Known()  # `steps.` of the runbook's, of each used one's, learnt as the run goes
        self.roll = Roll()  # hosts that failed (tolerated), left out afterwards; what failed in groups
        self.stop = threading.Event()
        self._later: frozenset[str] = frozenset()  # the hosts the steps after the current one list
        self._warmable: frozenset[str] = (
            frozenset()
        )  # of those, the ones a step not skipped at plan time lists
        self._pending: set[str] = set()  # the current step's hosts whose command has not started yet
        self._waited = False  # the run waited once (a command started, or the operator): warming began
        self.finished: list[HostOutcome] = []  # every host outcome of this session, for the summary
        values = plan.values
        self.secrets = {SecretRef(n).env: str(values.values[n]) for n in values.secrets if n in values.values}

    def run(self, steps: tuple[PlannedStep, ...]) -> list[StepOutcome]:
        """Run `steps` in order; stops at the first step that fails (unless it may), returns every outcome.
        After a step, the hosts no later step lists are released: closed in the background while the rest
        runs (after the last one, or one that stops the run, the run's end closes them all at once). Once the
        run first waits, the hosts the later steps list get their next command ready (`Fleet.warm`), and a
        host whose command ended gets its next one ready if a later step lists it: while the run waits."""
        outcomes = []
        used_after, warmable = _used_after(steps, skipped=True), _used_after(steps, skipped=False)
        for index, planned in enumerate(steps, start=1):
            self._warmable, self._pending = warmable[index - 1], set()
            self.terminal.say(f"\n▶ [{index}/{len(steps)}] {planned.id}: {planned.title}", "bold cyan")
            known = self.known.of(planned)  # `steps.` so far
            try:  # what reads earlier steps' output is rendered with it now (and a batch's failures)
                planned = self.roll.rendered(self.renderer, planned, known, self.fleet.platforms)
            except InvalidRunbook as error:  # with the run's values, after steps ran: the step failed
                outcome = unrendered.failed(planned, error, self.journal, self._end, self.terminal)
            else:
                outcome = self.manual(planned) if planned.manual is not None else self.command_step(planned)
            outcomes.append(outcome)
            self.known.learn(planned, outcome)
            for line, style in unrendered.result_lines(self.renderer, planned, outcome, known):
                self.terminal.say(line, style)
            if outcome.stopped:
                break
            if index < len(steps):
                self.fleet.release_all_but(used_after[index - 1])
        return outcomes

    # -- command steps -------------------------------------------------------------------------------

    def command_step(self, planned: PlannedStep) -> StepOutcome:
        done, todo = self.selection.hosts(planned, self.roll.left_out(planned), self.finished)
        if todo:
            self.gate.check(planned)  # four eyes: the step's approvals, before it runs on any host
        if todo and planned.step.confirm and not self.asker.confirm_step(planned):  # journaled, answered
            raise Declined(f"step {planned.id!r} was declined; it did not run, and nothing after it")
        outcome, note = judge_step(planned.id, planned.step, done + self._fan_out(planned, todo))
        outcome, note = self.roll.judged(planned, outcome, note)
        if note:
            self.terminal.say(f"  {note}", "yellow")
        return outcome

    def _fan_out(self, planned: PlannedStep, todo: list[HostPlan]) -> list[HostOutcome]:
        """The step on its hosts, `concurrency` at a time; Ctrl-C (or SIGTERM) kills every running command."""
        if not todo:
            return []
        futures: list[Future[HostOutcome]] = []
        workers = min(planned.concurrency, len(todo))
        self._pending = {h.host.name for h in todo}
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=planned.id)
        with self.terminal.progress(len(todo), planned.id) as advance:
            try:
                for host_plan in todo:
                    futures.append(pool.submit(self._host, planned, host_plan))
                    futures[-1].add_done_callback(lambda _: advance())
                wait(futures)
            except KeyboardInterrupt:
                self.stop.set()
                self.terminal.say("\ninterrupted: stopping the running commands…", "bold yellow")
                self.fleet.kill_all()
                wait(futures, timeout=10)
                raise Interrupted("interrupted by the operator") from None
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return [f.result() for f in futures]

    def _host(self, planned: PlannedStep, host_plan: HostPlan) -> HostOutcome:
        """The step's attempts on one host, until one is ok, the retries run out or the run stops."""
        name, step = host_plan.host.name, planned.step
        timer = self.fleet.clock.timer(planned.id, name)
        attempt, attempts = self.selection.attempts(planned.id, name, step, timer)  # an open series goes on
        outcome = HostOutcome(planned.id, name, Status.INTERRUPTED, reason="not started")
        out = self.journal.output_file(planned.id, name)
        self._pending.discard(name)
        try:
            while not self.stop.is_set():
                attempt += 1
                outcome, again = self._attempt(planned, host_plan, attempt, attempts, out)
                if outcome.status in (Status.OK, Status.INTERRUPTED, Status.UNKNOWN) or not again:
                    break
                self.terminal.retrying(outcome, step.retries.delay)
                timer.sleep(step.retries.delay, self.stop)
            else:  # stopped (Ctrl-C) while waiting to try again: the step did not fail, it was interrupted
                outcome = replace(outcome, status=Status.INTERRUPTED, reason=stopped_waiting(outcome))
        finally:
            out.close()
        if outcome.status is Status.OK and name in self._warmable:
            self.fleet.warm((name,), self._wanted)
        self.finished.append(outcome)
        self.terminal.result(outcome)
        return outcome

    def _attempt(
        self, planned: PlannedStep, host_plan: HostPlan, attempt: int, attempts: Attempts, out: OutputFile
    ) -> tuple[HostOutcome, bool]:
        """One attempt, journaled from its start to its end; whether another may follow."""
        name, mask = host_plan.host.name, self.terminal.masker.mask
        self.journal.append(records.step_start(planned.id, name, attempt))
        try:
            timeout = attempts.timeout()
            result = self._execute(planned, host_plan, attempt, timeout, out)
            status, reason = judge(planned.step, result, timeout, self._until_context(planned, host_plan))
        except _GroupRefused as refused:  # the script never got its go: failed, not started
            why = f"not started: the journal refused its process group: {refused.error}"
            self._end(
                HostOutcome(planned.id, name, Status.FAILED, None, attempts.elapsed, attempt, mask(why))
            )
            raise refused.error from None
        except BaseException as error:  # the start still gets its end, then the error goes on
            status, reason = broken_off(error)
            self._end(HostOutcome(planned.id, name, status, None, attempts.elapsed, attempt, mask(reason)))
            raise
        # the duration is the whole wait, every attempt and delay
        outcome = HostOutcome(
            planned.id, name, status, result.exit_code, attempts.elapsed, attempt, mask(reason)
        )
        outcome = replace(outcome, stdout=mask(result.stdout), stderr=mask(result.stderr))
        outcome = resulting.kept(
            self.renderer, planned, outcome, host_plan.host, self.known.of(planned), mask
        )
        again, why_not = attempts.another(attempt)
        if not again and why_not and outcome.status.failed and outcome.status is not Status.INTERRUPTED:
            outcome = replace(outcome, reason=f"{outcome.reason}; {why_not}".lstrip("; "))
        cut = outcome.status in (Status.INTERRUPTED, Status.UNKNOWN)  # a resume makes it again
        self.journal.append(records.step_end(outcome, last=outcome.status is Status.OK or not (again or cut)))
        return outcome, again

    def _execute(
        self, planned: PlannedStep, host_plan: HostPlan, attempt: int, timeout: float | None, out: OutputFile
    ) -> Result:
        name = host_plan.host.name
        variant = host_plan.variant(self.fleet.platforms[name])
        assert variant is not None  # preflight checked every host has a command
        secrets = {env: self.secrets[env] for env in variant.secret_env}
        secrets.update({var: self.secrets[ref] for var, ref in host_plan.secret_env})

        def on_output(stream: str, line: str) -> None:
            masked = self.terminal.masker.mask(line)
            out.write_line(stream, masked)  # an error here stops the command: `Executor.run` raises it
            self.terminal.output(name, stream, masked)

        def on_group(pgid: int, started: str | None) -> None:  # raising: the script gets no go
            try:
                self.journal.append(records.process_group(planned.id, name, attempt, pgid, started))
            except JournalError as error:  # e.g. `LockLost`: another workstation took the lock over
                raise _GroupRefused(error) from error
            self._waiting()

        try:
            return self.fleet.executor(host_plan.host).run(
                variant.script,
                shell=planned.step.shell,
                cwd=host_plan.cwd,
                env=dict(host_plan.env),
                secrets=secrets,
                timeout=timeout,
                on_output=on_output,
                on_group=on_group,
            )
        except ConnectionFailed as error:  # e.g. a reconnect refused for a changed host key: nothing ran
            return Result(variant.script, name, None, "", f"runbook: {error}\n", 0.0, not_started=str(error))

    def _waiting(self) -> None:
        """The run waits (on a command it started, on the operator). The first time, the hosts the later
        steps list, and those of this step not started yet (`concurrency`), get their next command ready:
        not before, so the warming takes no CPU from the start of the step that follows the preflight; each
        as long as a step still to come lists it when its turn comes (`_wanted`, read then)."""
        if not self._waited:
            self._waited = True
            self.fleet.warm(sorted(self._warmable | self._pending), self._wanted)

    def _wanted(self, name: str) -> bool:
        return name in self._warmable or name in self._pending

    def _until_context(self, planned: PlannedStep, host_plan: HostPlan) -> dict[str, Any]:
        """What the step's `until` reads besides the result (nothing to render without an `until`)."""
        if planned.step.until is None:
            return {}
        platform = self.fleet.platforms.get(host_plan.host.name)
        return self.renderer.context(planned, host_plan.host, platform, self.known.of(planned))

    def _end(self, outcome: HostOutcome) -> None:
        self.journal.append(records.step_end(outcome))
        self.finished.append(outcome)
        self.terminal.result(outcome)

    # -- manual steps --------------------------------------------------------------------------------

    def manual(self, planned: PlannedStep) -> StepOutcome:
        if before := self.selection.answered(planned, self.roll.left_out(planned)):
            self.finished.append(before)
            self.terminal.result(before)
            return StepOutcome(planned.id, (before,))
        self.gate.check(planned)
        self._waiting()
        timer = self.fleet.clock.timer(planned.id, OPERATOR)
        started = timer.now()
        self.journal.append(records.step_start(planned.id, OPERATOR, 1))
        try:
            got = self.asker.manual(planned)
        except BaseException as error:  # Ctrl-C at the question: the start still gets its end
            status, reason = broken_off(error)
            self._end(HostOutcome(planned.id, OPERATOR, status, None, timer.now() - started, 1, reason))
            raise
        status, elapsed = Status.OK if got.ok else Status.FAILED, timer.now() - started
        outcome = HostOutcome(planned.id, OPERATOR, status, None, elapsed, 1, got.reason, got.answer or "")
        self._end(outcome)
        return StepOutcome(planned.id, (outcome,), () if got.ok else (OPERATOR,), stopped=not got.ok)


def _used_after(steps: tuple[PlannedStep, ...], skipped: bool) -> list[frozenset[str]]:
    """For each step, the hosts the steps after it list. With the `skipped` ones (a `when` decided at plan
    time): every host a later step could run on or ask about, none released too early (a `when` known only
    when its step comes, a failure leaving a host out, a resume asking an unknown step's host how its first
    copy ended). Without: the hosts worth a session opened ahead."""
    after: frozenset[str] = frozenset()
    found = []
    for planned in reversed(steps):
        found.append(after)
        after |= {h.host.name for h in planned.hosts if skipped or not h.skip}
    return found[::-1]
