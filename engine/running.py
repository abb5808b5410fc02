"""Executes a plan, step by step: fan-out, retries, expectations, confirmations and manual steps.

Every step and host is journaled before it starts and after it ends, so a crash at any moment leaves a
record that says what may have happened. Ctrl-C kills what runs (locally and on the nodes), records it,
and leaves through `Interrupted`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from engine import journal as records
from engine.attempts import Attempts, until_holds
from engine.console import Terminal
from engine.errors import ConnectionFailed, Declined, Interrupted, JournalError, StepFailed
from engine.executors import Result
from engine.journal import OPERATOR, AnsweredBy, Journal
from engine.outcomes import HostOutcome, Status, StepOutcome
from engine.planning import HostPlan, PlannedStep, Planner
from engine.preflight import Fleet
from engine.prompting import ATTEMPTS
from engine.rendering import SecretRef
from engine.stillrunning import Check, FirstCopy, Group, IfStillRunning


@dataclass(frozen=True)
class Settings:
    yes: bool = False
    confirm_manual: bool = False
    rerun_unknown: bool = False
    if_still_running: IfStillRunning | None = (
        None  # an unknown step's first copy still runs: the flag's answer
    )


@dataclass(frozen=True)
class ManualAnswer:
    """What a manual step got: the answer (None: none given), who gave it, and whether it is the expected one."""

    answer: str | None
    by: AnsweredBy
    ok: bool
    expected: str | None = None  # the value or pattern it had to meet, as journaled
    reason: str = ""  # why it is not ok


def yes_or_ask(
    terminal: Terminal, question: str, flag: AnsweredBy | None, said: str | None = None
) -> tuple[bool, AnsweredBy]:
    """The flag's yes, said on the terminal so the log shows who answered; without a flag, the operator's."""
    if flag is not None:
        terminal.say(said or f"{question} yes ({flag})", "yellow")
        return True, flag
    return terminal.confirm(question), AnsweredBy.OPERATOR


class Runner:
    def __init__(
        self,
        planner: Planner,
        fleet: Fleet,
        terminal: Terminal,
        journal: Journal,
        settings: Settings,
        user: str,
        previous: Mapping[tuple[str, str], Status] | None = None,
        groups: Mapping[tuple[str, str], Group] | None = None,
    ) -> None:
        self.planner, self.fleet, self.terminal, self.journal = planner, fleet, terminal, journal
        self.settings, self.user = settings, user
        self.previous = dict(previous or {})
        self.groups = dict(groups or {})  # (step, host) → its process group in the resumed run
        self.first_copy = FirstCopy(terminal, journal, user, settings.if_still_running)
        self.context: dict[str, Any] = {}  # `steps.` of the runbook's templates
        self.scopes: dict[str, dict[str, Any]] = {"": self.context}  # and of each used runbook's
        self.failed_hosts: dict[str, str] = {}  # host → step it failed in (tolerated), left out afterwards
        self.stop = threading.Event()
        self.finished: list[HostOutcome] = []  # every host outcome of this session, for the summary
        values = planner.values
        self.secrets = {SecretRef(n).env: str(values.values[n]) for n in values.secrets if n in values.values}

    def run(self, steps: tuple[PlannedStep, ...]) -> list[StepOutcome]:
        """Run `steps` in order; stops at the first step that fails (unless it may), returns every outcome."""
        outcomes = []
        for index, planned in enumerate(steps, start=1):
            self.terminal.say(f"\n▶ [{index}/{len(steps)}] {planned.id}: {planned.title}", "bold cyan")
            if planned.deferred:  # commands or texts that read earlier steps' output: rendered with it now
                planned = self._planner(planned).plan_step(
                    planned.step,
                    steps=self._steps(planned),
                    platforms=self.fleet.platforms,
                    item=planned.item,
                )
            outcome = self.manual(planned) if planned.manual is not None else self.command_step(planned)
            outcomes.append(outcome)
            self._learn(planned, outcome)
            if outcome.status is Status.OK and planned.step.result is not None:
                result = self._planner(planned).text(planned, planned.step.result, self._steps(planned))
                self.terminal.say(f"  result: {result}", "green")
            if outcome.stopped:
                break
        return outcomes

    def _learn(self, planned: PlannedStep, outcome: StepOutcome) -> None:
        """`steps.<id>` for later templates; a loop's is its last item's, with every item's in `items`."""
        known = outcome.context()
        if planned.item is not None:
            items = [*self._steps(planned).get(planned.step.id, {}).get("items", ()), known]
            known = {**known, "items": items}
        # a used runbook's step is `steps.save` in it, `steps['snapshot/save']` in the runbook using it
        parts = [*planned.scope.split("/"), planned.step.id] if planned.scope else [planned.step.id]
        for cut in range(len(parts)):
            self.scopes.setdefault("/".join(parts[:cut]), {})["/".join(parts[cut:])] = known

    def _planner(self, planned: PlannedStep) -> Planner:
        return planned.planner or self.planner

    def _steps(self, planned: PlannedStep) -> dict[str, Any]:
        """What `steps.` holds for this step's templates: its own runbook's steps that ran."""
        return self.scopes.setdefault(planned.scope, {})

    # -- command steps -------------------------------------------------------------------------------

    def command_step(self, planned: PlannedStep) -> StepOutcome:
        done, todo = self._select(planned)
        if todo and planned.step.confirm and not self._confirm_step(planned):  # journaled with its answer
            raise Declined(f"step {planned.id!r} was declined; it did not run, and nothing after it")
        outcomes = done + self._fan_out(planned, todo)
        failed = tuple(o.host for o in outcomes if o.status.failed)
        step = planned.step
        for host in failed if not step.continue_on_error else ():  # continue_on_error: the host goes on too
            self.failed_hosts.setdefault(host, planned.id)
        # An unknown outcome (the connection was lost under the command) stops the run like an interrupt:
        # what comes next may depend on a command that is perhaps still running.
        interrupted = any(o.status in (Status.INTERRUPTED, Status.UNKNOWN) for o in outcomes)
        too_many = len(failed) > step.max_failed_hosts
        if failed and not too_many:
            self.terminal.say(
                f"  {len(failed)} host(s) failed, within max_failed_hosts={step.max_failed_hosts}: "
                f"going on without {', '.join(failed)}",
                "yellow",
            )
        elif failed and step.continue_on_error:
            self.terminal.say("  step failed; continue_on_error: going on", "yellow")
        stopped = interrupted or (too_many and not step.continue_on_error)
        return StepOutcome(planned.id, tuple(outcomes), failed, stopped)

    def _select(self, planned: PlannedStep) -> tuple[list[HostOutcome], list[HostPlan]]:
        """Hosts already done (resume), skipped, or left out after failing earlier; the rest run."""
        return self._select_from(planned, self._once(planned) if planned.step.run_once else planned.hosts)

    def _once(self, planned: PlannedStep) -> tuple[HostPlan, ...]:
        """`run_once`: the host that ran it in the resumed run, else the first host not left out."""
        for host_plan in planned.hosts:
            before = self.previous.get((planned.id, host_plan.host.name))
            if before is not None and (before.finished_well or before is Status.UNKNOWN):
                return (host_plan,)
        for host_plan in planned.hosts:
            if not host_plan.skip and host_plan.host.name not in self.failed_hosts:
                others = len(planned.hosts) - 1
                self.terminal.say(
                    f"  run_once: on {host_plan.host.name} only (not on {others} other host(s))"
                )
                return (host_plan,)
        return planned.hosts  # every host is left out: each says why

    def _select_from(
        self, planned: PlannedStep, hosts: tuple[HostPlan, ...]
    ) -> tuple[list[HostOutcome], list[HostPlan]]:
        done, todo = [], []
        for host_plan in hosts:
            name = host_plan.host.name
            before = self.previous.get((planned.id, name))
            if before is not None and before.finished_well:
                outcome = HostOutcome(
                    planned.id, name, Status.DONE_BEFORE, reason="finished in the resumed run"
                )
                self.finished.append(outcome)
                done.append(outcome)
            elif host_plan.skip or name in self.failed_hosts:
                # Left out after failing earlier is not journaled: a resume must run it once the host is fixed.
                reason = host_plan.skip or f"left out: failed in step {self.failed_hosts[name]}"
                outcome = HostOutcome(planned.id, name, Status.SKIPPED, reason=reason)
                if host_plan.skip:
                    self.journal.append(records.step_start(planned.id, name, 0))
                    self.journal.append(records.step_end(outcome))
                self.terminal.result(outcome)
                self.finished.append(outcome)
                done.append(outcome)
            elif before is Status.UNKNOWN and (ended := self._unknown_again(planned, host_plan)):
                done.append(ended)
            else:
                todo.append(host_plan)
        return done, todo

    def _unknown_again(self, planned: PlannedStep, host_plan: HostPlan) -> HostOutcome | None:
        """An unknown step: its outcome when the node kept one and it was ok (done), None to run it again
        (confirmed, or it failed there); never while its first copy still runs (`FirstCopy` settles that)."""
        step, name = planned.id, host_plan.host.name
        group = self.groups.get((step, name))
        if group is not None:
            check = Check(step, name, group, self.fleet.executor(host_plan.host), planned.step.timeout)
            if (ended := self.first_copy.settle(check)) is not None:
                if ended.status is Status.OK:
                    self.finished.append(ended)
                    self.terminal.result(ended)
                    return ended
                return None  # it ran and failed: a resume runs that again without asking
        if not self._rerun_unknown(step, name):
            raise StepFailed(f"step {step!r} on {name}: outcome unknown and not confirmed; stopping")
        return None

    def _rerun_unknown(self, step: str, host: str) -> bool:
        question = (
            f"step {step!r} on {host} did not finish in the resumed run (crash, kill, Ctrl-C or a lost "
            "connection): its outcome is unknown. Run it again?"
        )
        flag = AnsweredBy.RERUN_UNKNOWN if self.settings.rerun_unknown else None
        answer, by = yes_or_ask(self.terminal, question, flag)
        self.journal.append(
            records.confirmation(step, question, "yes" if answer else "no", self.user, by, host=host)
        )
        return answer

    def _confirm_step(self, planned: PlannedStep) -> bool:
        question = planned.confirm_question or ""
        wanted = planned.confirm_text
        if wanted is not None and not self.settings.yes:
            self.terminal.say(question, "bold")
            answer, by = self._typed(wanted), AnsweredBy.OPERATOR
            ok = answer == wanted
        else:
            flag = AnsweredBy.YES if self.settings.yes else None
            ok, by = yes_or_ask(self.terminal, question, flag, f"{question} — yes ({flag})")
            answer = "yes" if ok else "no"
        self.journal.append(records.confirmation(planned.id, question, answer, self.user, by, ok=ok))
        return ok

    def _typed(self, wanted: str) -> str:
        """The text typed to confirm a step, asked again while it does not match (a typo is not a no);
        Enter, or the end of input, declines at once."""
        answer = ""
        for attempt in range(1, ATTEMPTS + 1):
            answer = self.terminal.ask(f"Type {wanted!r} to go on (Enter to decline):") or ""
            if answer in (wanted, ""):
                return answer
            again = f"; type it exactly ({ATTEMPTS - attempt} more), or press Enter to decline"
            self.terminal.say(
                f"{answer!r} is not {wanted!r}" + (again if attempt < ATTEMPTS else ""), "yellow"
            )
        return answer

    def _fan_out(self, planned: PlannedStep, todo: list[HostPlan]) -> list[HostOutcome]:
        """The step on its hosts, `concurrency` at a time; Ctrl-C (or SIGTERM) kills every running command."""
        if not todo:
            return []
        futures: list[Future[HostOutcome]] = []
        pool = ThreadPoolExecutor(
            max_workers=min(planned.concurrency, len(todo)), thread_name_prefix=planned.id
        )
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
        name = host_plan.host.name
        variant = host_plan.variant(self.fleet.platforms[name])
        assert variant is not None  # preflight checked every host has a command
        step = planned.step
        out = self.journal.output_file(planned.id, name)

        def on_output(stream: str, line: str) -> None:
            masked = self.terminal.masker.mask(line)
            out.write_line(stream, masked)
            self.terminal.output(name, stream, masked)

        secrets = {env: self.secrets[env] for env in variant.secret_env}
        secrets.update({var: self.secrets[ref] for var, ref in host_plan.secret_env})
        attempt, attempts = 0, Attempts(step)
        outcome = HostOutcome(planned.id, name, Status.INTERRUPTED, reason="not started")

        def on_group(pgid: int, started: str | None) -> None:
            try:
                self.journal.append(records.process_group(planned.id, name, attempt, pgid, started))
            except JournalError:
                pass  # the journal refuses every later append: the step's end raises this same error

        while not self.stop.is_set():
            attempt += 1
            self.journal.append(records.step_start(planned.id, name, attempt))
            timeout = attempts.timeout()
            try:
                result = self.fleet.executor(host_plan.host).run(
                    variant.script,
                    shell=step.shell,
                    cwd=host_plan.cwd,
                    env=dict(host_plan.env),
                    secrets=secrets,
                    timeout=timeout,
                    on_output=on_output,
                    on_group=on_group,
                )
            except ConnectionFailed as error:  # e.g. a reconnect refused for a changed host key: nothing ran
                result = Result(
                    variant.script, name, None, "", f"runbook: {error}\n", 0.0, not_started=str(error)
                )
            outcome = self._judge(planned, host_plan, result, attempt, timeout)
            outcome = replace(outcome, duration=attempts.elapsed)  # the whole wait, every attempt and delay
            again, why_not = attempts.another(attempt)
            if not again and why_not and outcome.status.failed and outcome.status is not Status.INTERRUPTED:
                outcome = replace(outcome, reason=f"{outcome.reason}; {why_not}".lstrip("; "))
            self.journal.append(records.step_end(outcome))
            if outcome.status in (Status.OK, Status.INTERRUPTED, Status.UNKNOWN) or not again:
                break
            why = f" ({outcome.reason})" if outcome.reason else ""
            self.terminal.say(
                f"  {name}: attempt {attempt} failed{why}; retrying in {step.retries.delay:g}s", "yellow"
            )
            self.stop.wait(step.retries.delay)
        out.close()
        self.finished.append(outcome)
        self.terminal.result(outcome)
        return outcome

    def _judge(
        self, planned: PlannedStep, host_plan: HostPlan, result: Result, attempt: int, timeout: float | None
    ) -> HostOutcome:
        mask = self.terminal.masker.mask
        expect = planned.step.expect
        host = host_plan.host.name
        status, reason = Status.OK, ""
        if result.not_started is not None:
            status, reason = Status.FAILED, f"not started: {result.not_started}"
        elif result.connection_lost is not None:  # the truth: it may have had its effect, or still be running
            killed = f"timed out after {timeout or 0:g}s, then " if result.timed_out else ""
            status = Status.UNKNOWN
            reason = (
                f"{killed}lost the connection ({result.connection_lost}): the command may still be running"
            )
        elif result.interrupted:
            status, reason = Status.INTERRUPTED, "interrupted"
        elif result.timed_out:
            status, reason = Status.TIMED_OUT, f"killed after {timeout or 0:g}s"
        elif result.exit_code not in expect.exit_codes:
            status, reason = Status.FAILED, ""
        elif expect.stdout_contains is not None and expect.stdout_contains not in result.stdout:
            status, reason = Status.FAILED, f"output does not contain {expect.stdout_contains!r}"
        elif expect.stdout_matches is not None and not re.search(expect.stdout_matches, result.stdout, re.M):
            status, reason = Status.FAILED, f"output does not match {expect.stdout_matches!r}"
        else:
            platform = self.fleet.platforms.get(host)
            context = self._planner(planned).context(
                host_plan.host, platform, self._steps(planned), planned.item
            )
            held, why = until_holds(planned.step, context, result)
            status, reason = (Status.OK, "") if held else (Status.FAILED, mask(why))
        return HostOutcome(
            planned.id,
            host,
            status,
            result.exit_code,
            result.duration,
            attempt,
            reason,
            mask(result.stdout),
            mask(result.stderr),
        )

    # -- manual steps --------------------------------------------------------------------------------

    def manual(self, planned: PlannedStep) -> StepOutcome:
        if self.previous.get((planned.id, OPERATOR)) is Status.OK:
            outcome = HostOutcome(
                planned.id, OPERATOR, Status.DONE_BEFORE, reason="answered in the resumed run"
            )
            self.finished.append(outcome)
            self.terminal.result(outcome)
            return StepOutcome(planned.id, (outcome,))
        started = time.monotonic()
        self.journal.append(records.step_start(planned.id, OPERATOR, 1))
        self.terminal.say("MANUAL STEP — do this yourself:", "bold magenta")
        self.terminal.say(planned.manual or "")
        got = self._manual_answer(planned)
        self.journal.append(
            records.manual(
                planned.id, planned.record_prompt, got.answer, got.expected, got.ok, self.user, got.by
            )
        )
        outcome = HostOutcome(
            planned.id,
            OPERATOR,
            Status.OK if got.ok else Status.FAILED,
            None,
            time.monotonic() - started,
            1,
            got.reason,
            stdout=got.answer or "",
        )
        self.journal.append(records.step_end(outcome))
        self.finished.append(outcome)
        self.terminal.result(outcome)
        return StepOutcome(planned.id, (outcome,), () if got.ok else (OPERATOR,), stopped=not got.ok)

    def _manual_answer(self, planned: PlannedStep) -> ManualAnswer:
        record = planned.step.record
        expected = planned.record_expect if record else None
        pattern = record.matches if record else None
        if self.settings.confirm_manual:
            flag = AnsweredBy.CONFIRM_MANUAL
            if pattern is not None and expected is None:
                return ManualAnswer(None, flag, False, pattern, f"{flag} cannot answer a 'matches' record")
            answer = expected if expected is not None else "done"
            self.terminal.say(f"answered by {flag}: {answer}", "yellow")
            return ManualAnswer(answer, flag, True, expected or pattern)
        operator = AnsweredBy.OPERATOR
        if record is None:
            ok = self.terminal.confirm("Done?")
            return ManualAnswer(
                "done" if ok else "not done", operator, ok, None, "" if ok else "not confirmed"
            )
        typed = self.terminal.ask(f"{planned.record_prompt}:")
        if typed is None:
            return ManualAnswer(None, operator, False, expected or pattern, "no answer")
        ok = (
            (typed.strip() == expected.strip())
            if expected is not None
            else (re.fullmatch(pattern, typed.strip()) is not None if pattern else True)
        )
        reason = "" if ok else f"expected {expected or pattern!r}, got {typed!r}"
        return ManualAnswer(typed, operator, ok, expected or pattern, reason)
