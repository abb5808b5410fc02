"""How a host is reached, as plain values: `Reach`, `Transport`, `Agent`, `SSHTarget`, `SSHOptions`, and this
machine's platform.

`Reach` (from `engine.hostsettings`, re-exported here) is the one list of a host's SSH settings: the model
keys its templates by its field names, `reach` renders them into one, and both a plan's host (`targets.Host`)
and a connection's target (`SSHTarget`) are a `Reach` with their own fields added. A new setting is one
field of it.

They are facts of the plan as much as of execution: targets, reach settings, `plan`, the checklist and the
Ansible export name them, and none of those runs anything. So they live here, free of the executors package
(its template, threads, subprocess and, on first SSH use, paramiko): `runbook plan` imports only these values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum

from engine.hostsettings import REACH_SETTINGS, Agent, Reach

__all__ = [
    "DESTINATION_FORMS",
    "REACH_SETTINGS",
    "Agent",
    "Destination",
    "Reach",
    "SSHOptions",
    "SSHTarget",
    "Transport",
    "describe_auth",
    "expand_home",
    "parse_destination",
    "this_platform",
]

# OpenSSH's destination: [ssh://][user@]host[:port], an IPv6 address in brackets ([fe80::1]:22), a port
# from 1 to 65535. The schema's `hosts` items pattern says the same for editors (tests/test_targets.py
# checks both give the same verdicts).
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_DESTINATION = re.compile(
    r"(?:ssh://)?(?:(?P<user>[^@\s,/]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|(?P<host>[^@:\s,/\[\]]+))"
    rf"(?::(?P<port>{_PORT}))?"
)
DESTINATION_FORMS = "host, user@host or user@host:port ([addr] for an IPv6 address)"


@dataclass(frozen=True)
class Destination:
    """Where a `user@host:port` written by a person (a hosts list, a jump host, ProxyJump) points."""

    host: str
    user: str | None = None
    port: int | None = None


def parse_destination(spec: str) -> Destination | None:
    """`spec` as OpenSSH reads a destination; None when it is not one (the caller says where it was)."""
    match = _DESTINATION.fullmatch(spec.strip())
    if match is None:
        return None
    return Destination(
        match["v6"] or match["host"], match["user"], int(match["port"]) if match["port"] else None
    )


@dataclass(frozen=True, kw_only=True)
class SSHTarget(Reach):
    """A host as a connection sees it; `None` fields are filled from ~/.ssh/config by `sshconfig.resolve()`.

    `jump` lists jump hosts with their own settings; `proxy_jump` is OpenSSH's text form (from ~/.ssh/config).
    """

    name: str = field(kw_only=False)
    hostname: str | None = field(default=None, kw_only=False)
    proxy_jump: str | None = None
    alive_interval: float | None = None
    """Seconds between keepalives that expect an answer (`ServerAliveInterval`); None: `SSHOptions.keepalive`."""
    alive_count_max: int | None = None
    """Keepalives left unanswered before the peer is declared dead (`ServerAliveCountMax`); None: 3."""
    jump: tuple[SSHTarget, ...] = ()
    legacy_rsa: bool = False
    """Sign with SHA-1 `ssh-rsa` for this host (`PubkeyAcceptedAlgorithms +ssh-rsa` in ~/.ssh/config): for an
    old sshd that accepts nothing else; never on by default."""


def expand_home(path: str) -> str:
    """Only a leading `~/` (or a bare `~`) means $HOME: `~user/` and a `~` further on stay as written."""
    if path == "~" or path.startswith("~/"):
        return os.path.join(os.path.expanduser("~"), path[2:])
    return path


def describe_auth(target: Reach) -> str:
    """What is offered to the host, in words (never the key itself)."""
    if target.agent is Agent.ONLY:
        return "the SSH agent only"
    offered = (
        ["inline key"] if target.key is not None else [f"key {target.key_file}"] if target.key_file else []
    )
    if target.offers_agent:
        offered.append("the SSH agent")
    if target.offers_default_keys:
        offered.append("default keys")
    return ", ".join(offered)


@dataclass(frozen=True)
class SSHOptions:
    """Run-wide SSH settings; paths keep their `~` so it is expanded against $HOME when used."""

    known_hosts: str = "~/.ssh/known_hosts"
    ssh_config: str = "~/.ssh/config"
    trust_new_keys: bool = False
    connect_timeout: float = 10.0
    """Seconds for the TCP connection, for each channel to open, and for the key exchange after the banner."""
    banner_timeout: float = 15.0
    """Seconds from the TCP connection to the server's SSH banner (a busy sshd is slow to send it)."""
    auth_timeout: float = 15.0
    keepalive: int = 15

    @property
    def negotiation_timeout(self) -> float:
        """Seconds for the banner, then the key exchange, as one wait: longer than both of theirs (each of which
        ends the wait sooner with its own cause), or a silent peer is given up on before its banner was due
        and the failure is named by the step after it ("authentication failed")."""
        return self.banner_timeout + self.connect_timeout + 5.0


class Transport(StrEnum):
    """How a host is reached, so which executor runs its commands (`executor_for` maps one to the other)."""

    LOCAL = "local"
    SSH = "ssh"


def this_platform() -> str:
    """This machine's platform under the names `run:` maps use: what `platform.system()` says, lowercased,
    without importing `platform` (every `plan` and `run` would pay for its import)."""
    return os.uname().sysname.lower() if hasattr(os, "uname") else "windows"
