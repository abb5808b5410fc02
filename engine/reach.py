"""A target's SSH settings, rendered for one host into a `transports.Reach`; and its jump hosts.

Every setting is a template, so an inventory can say how each of its hosts is reached. A setting that
renders empty (or `omit`) is unset. Key and certificate paths: only a leading `~/` means $HOME, and a
relative path is relative to the inventory file's directory (`base`), as tools that read such files do.
The inline `key` is a secret: it is carried in memory only, and no message here ever quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine import transports
from engine.errors import InvalidRunbook, Problem
from engine.model import Jump, Reach, Template
from engine.rendering import OMIT, render, template_problem
from engine.transports import DESTINATION_FORMS, REACH_SETTINGS, Agent, expand_home, parse_destination

_AGENT_WORDS = {
    "yes": Agent.YES,
    "true": Agent.YES,
    "on": Agent.YES,
    "no": Agent.NO,
    "false": Agent.NO,
    "off": Agent.NO,
    "only": Agent.ONLY,
}


@dataclass(frozen=True)
class RenderedHop:
    address: str
    reach: transports.Reach


def text(template: Template | None, context: Mapping[str, Any]) -> str | None:
    """A rendered setting, or None when it is absent or renders empty, `omit` or `None`."""
    value = render(template, context).strip() if template is not None else ""
    return None if value in ("", OMIT, "None") else value


def render_reach(reach: Reach, context: Mapping[str, Any], base: str | None) -> transports.Reach:
    """Every setting rendered (None when absent or empty) and checked; a setting not named in `_READ` is
    plain text."""
    found = {name: _reader(name)(reach.get(name), context, base) for name in REACH_SETTINGS}
    _check_together(reach, found)
    return transports.Reach(**found)


def _check_together(reach: Reach, found: Mapping[str, Any]) -> None:
    """What each setting allows depends on the others: one key, and a certificate only with it."""
    key, key_file = found["key"], found["key_file"]
    if key is not None and key_file is not None:
        raise InvalidRunbook([_problem(reach, "key", "both key and key_file are set: give one")])
    if found["agent"] is Agent.ONLY and (key is not None or key_file is not None):
        message = (
            "agent: only, but a key is set too: leave key and key_file empty when only the agent is used"
        )
        raise InvalidRunbook([_problem(reach, "agent", message)])
    cert, cert_file = found["cert"], found["cert_file"]
    if (cert is not None or cert_file is not None) and key is None and key_file is None:
        where = "cert" if cert is not None else "cert_file"
        raise InvalidRunbook([_problem(reach, where, "a certificate needs its key (key or key_file)")])


def _problem(reach: Reach, setting: str, message: str) -> Problem:
    template = reach.get(setting)
    assert template is not None
    return template_problem(template, message)


def _text(template: Template | None, context: Mapping[str, Any], base: str | None) -> str | None:
    return text(template, context)


def _port(template: Template | None, context: Mapping[str, Any], base: str | None) -> int | None:
    port = text(template, context)
    if port is not None and not port.isdigit():
        assert template is not None
        raise InvalidRunbook([template_problem(template, f"port {port!r} is not a number")])
    return int(port) if port is not None else None


def _agent(template: Template | None, context: Mapping[str, Any], base: str | None) -> Agent | None:
    agent = text(template, context)
    if agent is not None and agent.lower() not in _AGENT_WORDS:
        assert template is not None
        raise InvalidRunbook([template_problem(template, f"agent {agent!r}: expected yes, no or only")])
    return _AGENT_WORDS[agent.lower()] if agent is not None else None


def _file(template: Template | None, context: Mapping[str, Any], base: str | None) -> str | None:
    return _path(text(template, context), base)


def _inline(template: Template | None, context: Mapping[str, Any], base: str | None) -> str | None:
    return _secret(template, context)


_Reader = Callable[[Template | None, Mapping[str, Any], str | None], Any]


def _reader(setting: str) -> _Reader:
    return _READ.get(setting, _text)


_READ: dict[str, _Reader] = {
    "port": _port,
    "agent": _agent,
    "key_file": _file,
    "cert_file": _file,
    "key": _inline,
    "cert": _inline,
}


def render_jump(jump: Jump, context: Mapping[str, Any], base: str | None) -> list[RenderedHop]:
    """The jump hosts in order; a hop whose host renders empty is left out (an optional bastion)."""
    if jump.text is not None:
        written = text(jump.text, context)
        return [_parse_hop(jump.text, spec) for spec in (written or "").split(",") if spec.strip()]
    hops = []
    for hop in jump.hops:
        address = text(hop.host, context)
        if address is not None:
            hops.append(RenderedHop(address, render_reach(hop.reach, context, base)))
    return hops


def _parse_hop(template: Template, spec: str) -> RenderedHop:
    found = parse_destination(spec)
    if found is None:
        message = f"jump host {spec.strip()!r}: expected {DESTINATION_FORMS}"
        raise InvalidRunbook([template_problem(template, message)])
    return RenderedHop(found.host, transports.Reach(user=found.user, port=found.port))


def _secret(template: Template | None, context: Mapping[str, Any]) -> str | None:
    """An inline key or certificate: kept whole (no strip of its inner lines), None when empty."""
    if template is None:
        return None
    value = render(template, context)
    return None if value.strip() in ("", OMIT, "None") else value.strip() + "\n"


def _path(path: str | None, base: str | None) -> str | None:
    if path is None:
        return None
    path = expand_home(path)
    return os.path.join(base, path) if base is not None and not os.path.isabs(path) else path
