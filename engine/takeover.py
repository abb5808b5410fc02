"""`run --resume RUN_ID --take-over`: the operator's typed confirmation before a silent holder is ended.

A backend whose lock has a heartbeat (PostgreSQL) calls the question only for a holder whose heartbeat is
stale (alive but silent: a hung process, a workstation cut off before the keepalives noticed). The operator
types the run id to go on; anything else declines. Each answer is journaled once the lock is ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import records
from engine.console import Terminal
from engine.records import AnsweredBy
from engine.state.base import LockHolder, RunWriter


@dataclass
class TakeOverQuestion:
    """Asks, remembers what was asked and answered, and journals it (`journal`)."""

    terminal: Terminal
    run_id: str
    asked: list[tuple[str, str, bool]] = field(default_factory=list)

    def __call__(self, holder: LockHolder) -> bool:
        question = (
            f"The lock is held by {holder.describe()}, whose heartbeat is stale: end that session and take "
            f"over run {self.run_id}?"
        )
        self.terminal.say(question, "bold yellow")
        answer = self.terminal.ask(f"Type {self.run_id!r} to take over (Enter to decline):") or ""
        ok = answer == self.run_id
        self.asked.append((question, answer, ok))
        return ok

    def journal(self, writer: RunWriter, user: str) -> None:
        for question, answer, ok in self.asked:
            writer.append(records.confirmation(None, question, answer, user, AnsweredBy.OPERATOR, ok=ok))
