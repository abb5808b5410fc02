"""How one host is reached, as the runbook (or an inventory entry) says it: `Reach`, whose fields are the one
list of a host's SSH settings (`REACH_SETTINGS`), and `Agent`.

Apart from the rest of `engine.transports` (which re-exports them) because validating a runbook needs the
settings' names and nothing else of how hosts are reached: `runbook validate` creates these two types only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any


class Agent(enum.Enum):
    """Whether the SSH agent's keys are offered: besides the host's key (YES), never (NO), or alone (ONLY)."""

    YES = "yes"
    NO = "no"
    ONLY = "only"


@dataclass(frozen=True, kw_only=True)
class Reach:
    """How one host is reached, as the runbook (or an inventory entry) says it; None: not set, so
    ~/.ssh/config or ssh's default decides.

    `key` and `cert` are inline: a secret (the key) and its certificate, kept out of `repr` and only ever
    parsed in memory. `agent` None: the agent and the default keys when no key is given, else only the key
    (like `ssh -i`)."""

    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    key: str | None = field(default=None, repr=False)
    cert_file: str | None = None
    cert: str | None = field(default=None, repr=False)
    agent: Agent | None = None

    def settings(self) -> dict[str, Any]:
        """The settings alone, by name: to build another `Reach` (a `Host`, an `SSHTarget`) from this one."""
        return {name: getattr(self, name) for name in REACH_SETTINGS}

    @property
    def has_key(self) -> bool:
        return self.key is not None or self.key_file is not None

    @property
    def offers_agent(self) -> bool:
        """The agent's keys are offered: when asked (YES, ONLY), or by default when no key is given (like
        `ssh` without `-i`). The one statement of the rule: connecting, its error messages and `plan` read it."""
        return self.agent in (Agent.YES, Agent.ONLY) or (self.agent is None and not self.has_key)

    @property
    def offers_default_keys(self) -> bool:
        """~/.ssh/id_* (and an IdentityFile of ~/.ssh/config) are offered: only when no key is given and the
        agent is not the only way."""
        return not self.has_key and self.agent is not Agent.ONLY


REACH_SETTINGS = tuple(setting.name for setting in fields(Reach))
"""The settings' names, in order: also the runbook's keys for them (`targets.<name>.<setting>`)."""
