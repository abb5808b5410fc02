"""Asking people during a run: a step's confirmation (yes, or a text to type), a manual step's answer, and
whether to run an unknown step again. Each answer is journaled with who gave it: the operator, or the flag
that answered for them (`Settings`), said on the terminal so the log shows it too.

Kept apart from the runner (as pre-commit keeps its prompts out of `_run_hooks`): the runner decides when
to ask, this module how, and what an answer means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine import records
from engine.console import Terminal
from engine.planning import PlannedStep
from engine.prompting import ATTEMPTS
from engine.records import AnsweredBy
from engine.state import RunWriter
from engine.stillrunning import IfStillRunning


@dataclass(frozen=True)
class Settings:
    """The answers given in advance, by flags."""

    yes: bool = False
    confirm_manual: bool = False
    rerun_unknown: bool = False
    if_still_running: IfStillRunning | None = (
        None  # an unknown step's first copy still runs: the flag's answer
    )
    scripted: Mapping[str, str] = field(default_factory=dict)  # manual answers by step id: a rehearsal's


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


class Asker:
    """Asks the questions of one run and journals every answer."""

    def __init__(self, terminal: Terminal, journal: RunWriter, user: str, settings: Settings) -> None:
        self.terminal, self.journal, self.user, self.settings = terminal, journal, user, settings

    def rerun_unknown(self, step: str, host: str) -> bool:
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

    def confirm_step(self, planned: PlannedStep) -> bool:
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

    def manual(self, planned: PlannedStep) -> ManualAnswer:
        """Show a manual step, get its answer, and journal it (the `manual` record)."""
        self.terminal.say("MANUAL STEP — do this yourself:", "bold magenta")
        self.terminal.say(planned.manual or "")
        got = self._manual_answer(planned)
        self.journal.append(
            records.manual(
                planned.id, planned.record_prompt, got.answer, got.expected, got.ok, self.user, got.by
            )
        )
        return got

    def _manual_answer(self, planned: PlannedStep) -> ManualAnswer:
        record = planned.step.record
        expected = planned.record_expect if record else None
        pattern = record.matches if record else None
        if (scripted := self.settings.scripted.get(planned.id)) is not None:
            self.terminal.say(f"answered by {AnsweredBy.SCENARIO}: {scripted}", "yellow")
            return _judged(planned, scripted, AnsweredBy.SCENARIO)
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
        given: ManualAnswer | None = None
        for attempt in range(
            1, ATTEMPTS + 1
        ):  # a typo is not a failure: asked again, like a typed confirmation
            typed = self.terminal.ask(f"{planned.record_prompt}:")
            if typed is None or (typed == "" and given is not None):  # no more answers: the last one stands
                break
            given = _judged(planned, typed, operator)
            if given.ok:
                return given
            more = ATTEMPTS - attempt
            again = f"; type it again ({more} more), or press Enter to stop" if more else ""
            self.terminal.say(f"{typed!r} is not what was expected ({given.expected!r}){again}", "yellow")
        return given or ManualAnswer(None, operator, False, expected or pattern, "no answer")


def _judged(planned: PlannedStep, typed: str, by: AnsweredBy) -> ManualAnswer:
    """An answer to a manual step, held against what its `record` expects (without one: "done" is done)."""
    record = planned.step.record
    if record is None:
        ok = typed.strip().lower() in ("done", "y", "yes")
        return ManualAnswer(typed, by, ok, None, "" if ok else "not confirmed")
    expected, pattern = planned.record_expect, record.matches
    ok = (
        (typed.strip() == expected.strip())
        if expected is not None
        else (re.fullmatch(pattern, typed.strip()) is not None if pattern else True)
    )
    reason = "" if ok else f"expected {expected or pattern!r}, got {typed!r}"
    return ManualAnswer(typed, by, ok, expected or pattern, reason)
