"""Which hosts of a step run now, given what the resumed run already did (beside `engine.resume`, which
finds that run and reads its outcomes).

A host that finished well before is done; one skipped by a false `when` or left out after failing in an
earlier step is not run; one whose outcome is unknown runs again only after its first copy is settled (no
second copy) and someone says yes; the rest run. For `run_once`, the host that ran it before keeps it. A
host's series of attempts that the resumed run left open goes on (`attempts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine import records
from engine.asking import Asker
from engine.attempts import Attempts
from engine.clock import Timer
from engine.console import Terminal
from engine.errors import StepFailed
from engine.fleet import Fleet
from engine.model import Step
from engine.outcomes import HostOutcome, Status
from engine.planning import HostPlan, PlannedStep
from engine.records import OPERATOR
from engine.state import RunWriter
from engine.stillrunning import Check, FirstCopy

if TYPE_CHECKING:
    from engine.resume import Previous  # a resume's: the module loads only for one


class Selection:
    """Picks each step's hosts for one run; `previous` is the resumed run (None: a new run)."""

    def __init__(self, previous: Previous | None, asker: Asker, fleet: Fleet) -> None:
        self.previous, self.asker, self.fleet = previous, asker, fleet
        settings = asker.settings
        self.first_copy = FirstCopy(asker.terminal, asker.journal, asker.user, settings.if_still_running)

    @property
    def terminal(self) -> Terminal:
        return self.asker.terminal

    @property
    def journal(self) -> RunWriter:
        return self.asker.journal

    def _before(self, step: str, host: str) -> Status | None:
        """The last state of `step` on `host` in the resumed run (INTERRUPTED reads as UNKNOWN)."""
        return None if self.previous is None else self.previous.status((step, host))

    def answered(self, planned: PlannedStep, left_out: Mapping[str, str]) -> HostOutcome | None:
        """A manual step that is not asked: answered well in the resumed run, skipped by a false `when`
        (journaled), or left out after its group's run broke off (not journaled, like a host left out)."""
        if self.previous is not None and self._before(planned.id, OPERATOR) is Status.OK:
            return self.previous.done((planned.id, OPERATOR), "answered in the resumed run")
        if OPERATOR in left_out:
            reason = f"left out: failed in step {left_out[OPERATOR]}"
            return HostOutcome(planned.id, OPERATOR, Status.SKIPPED, reason=reason)
        if planned.skip is None:
            return None
        outcome = HostOutcome(planned.id, OPERATOR, Status.SKIPPED, reason=planned.skip)
        self.journal.append(records.step_start(planned.id, OPERATOR, 0))
        self.journal.append(records.step_end(outcome))
        return outcome

    def hosts(
        self, planned: PlannedStep, failed_hosts: Mapping[str, str], finished: list[HostOutcome]
    ) -> tuple[list[HostOutcome], list[HostPlan]]:
        """The outcomes of the hosts that do not run (done before, skipped, left out) and the hosts that do;
        `failed_hosts` names the step each host failed in earlier (tolerated), if it did. Each outcome also
        goes to `finished` at once: the summary shows it even when a later host stops the run."""
        hosts = self._once(planned, failed_hosts) if planned.step.run_once else planned.hosts
        done, todo = [], []
        for host_plan in hosts:
            name = host_plan.host.name
            before = self._before(planned.id, name)
            tolerated = before is not None and before.ran_and_failed and planned.step.continue_on_error
            if self.previous is not None and before is not None and (before.finished_well or tolerated):
                # with what it printed and returned: later templates read `steps.<id>` as it was; a failure
                # the runbook tolerates (continue_on_error) is done too
                why = "failed, tolerated (continue_on_error)" if tolerated else "finished"
                outcome = self.previous.done((planned.id, name), f"{why} in the resumed run")
                finished.append(outcome)
                done.append(outcome)
            elif host_plan.skip or name in failed_hosts or name in self.fleet.unreachable:
                # Left out after failing earlier (or unreachable) is not journaled: a resume must run it once
                # the host is back.
                reason = (
                    host_plan.skip
                    or self.fleet.unreachable.get(name)
                    or f"left out: failed in step {failed_hosts[name]}"
                )
                outcome = HostOutcome(planned.id, name, Status.SKIPPED, reason=reason)
                if host_plan.skip:
                    self.journal.append(records.step_start(planned.id, name, 0))
                    self.journal.append(records.step_end(outcome))
                self.terminal.result(outcome)
                finished.append(outcome)
                done.append(outcome)
            elif before is Status.UNKNOWN and (ended := self._unknown_again(planned, host_plan, finished)):
                done.append(ended)
            else:
                todo.append(host_plan)
        return done, todo

    def attempts(self, step_id: str, host: str, step: Step, timer: Timer) -> tuple[int, Attempts]:
        """The attempts already made and the series' start on `timer` (the fleet's clock, simulated in a
        rehearsal): a series the resumed run left open goes on."""
        carried = self.previous.carried((step_id, host), step.deadline) if self.previous else None
        if carried is None:
            return 0, Attempts(step, timer.now(), timer)
        if carried.note:
            self.terminal.say(f"  {host}: {carried.note}", "yellow")
        return carried.made, Attempts(step, timer.now() - carried.elapsed, timer)

    def _once(self, planned: PlannedStep, failed_hosts: Mapping[str, str]) -> tuple[HostPlan, ...]:
        """`run_once`: the host that ran it in the resumed run, else the first host not left out."""
        for host_plan in planned.hosts:
            before = self._before(planned.id, host_plan.host.name)
            if before is not None and (before.finished_well or before is Status.UNKNOWN):
                return (host_plan,)
        for host_plan in planned.hosts:
            name = host_plan.host.name
            if not host_plan.skip and name not in failed_hosts and name not in self.fleet.unreachable:
                others = len(planned.hosts) - 1
                self.terminal.say(
                    f"  run_once: on {host_plan.host.name} only (not on {others} other host(s))"
                )
                return (host_plan,)
        return planned.hosts  # every host is left out: each says why

    def _unknown_again(
        self, planned: PlannedStep, host_plan: HostPlan, finished: list[HostOutcome]
    ) -> HostOutcome | None:
        """An unknown step: its outcome when the node kept one and it was ok (done), None to run it again
        (confirmed, or it failed there); never while its first copy still runs (`FirstCopy` settles that)."""
        step, name = planned.id, host_plan.host.name
        group = None if self.previous is None else self.previous.group((step, name))
        if group is not None:
            check = Check(step, name, group, self.fleet.executor(host_plan.host), planned.step.timeout)
            if (ended := self.first_copy.settle(check)) is not None:
                if ended.status is Status.OK:
                    finished.append(ended)
                    self.terminal.result(ended)
                    return ended
                return None  # it ran and failed: a resume runs that again without asking
        if not self.asker.rerun_unknown(step, name):
            raise StepFailed(f"step {step!r} on {name}: outcome unknown and not confirmed; stopping")
        return None
