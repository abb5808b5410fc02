"""A target's SSH settings, rendered for one host: user, port, key, certificate, agent use, jump hosts.

Every setting is a template, so an inventory can say how each of its hosts is reached. A setting that
renders empty (or `omit`) is unset. Key and certificate paths: only a leading `~/` means $HOME, and a
relative path is relative to the inventory file's directory (`base`), as tools that read such files do.
The inline `key` is a secret: it is carried in memory only, and no message here ever quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidRunbook
from engine.model import Jump, Reach, Template
from engine.rendering import OMIT, render, template_problem
from engine.transports import DESTINATION_FORMS, Agent, expand_home, parse_destination

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
class Settings:
    """The rendered settings of one host (or jump host); None: not set."""

    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    key: str | None = field(default=None, repr=False)
    cert_file: str | None = None
    cert: str | None = field(default=None, repr=False)
    agent: Agent | None = None


@dataclass(frozen=True)
class RenderedHop:
    address: str
    settings: Settings


def fields(settings: Settings) -> dict[str, Any]:
    """The settings as keyword arguments of `Host`."""
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def text(template: Template | None, context: Mapping[str, Any]) -> str | None:
    """A rendered setting, or None when it is absent or renders empty, `omit` or `None`."""
    value = render(template, context).strip() if template is not None else ""
    return None if value in ("", OMIT, "None") else value


def render_reach(reach: Reach, context: Mapping[str, Any], base: str | None) -> Settings:
    port = text(reach.port, context)
    if port is not None and not port.isdigit():
        assert reach.port is not None
        raise InvalidRunbook([template_problem(reach.port, f"port {port!r} is not a number")])
    agent = text(reach.agent, context)
    if agent is not None and agent.lower() not in _AGENT_WORDS:
        assert reach.agent is not None
        message = f"agent {agent!r}: expected yes, no or only"
        raise InvalidRunbook([template_problem(reach.agent, message)])
    key, key_file = _secret(reach.key, context), text(reach.key_file, context)
    if key is not None and key_file is not None:
        assert reach.key is not None
        raise InvalidRunbook([template_problem(reach.key, "both key and key_file are set: give one")])
    chosen = _AGENT_WORDS[agent.lower()] if agent is not None else None
    if chosen is Agent.ONLY and (key is not None or key_file is not None):
        assert reach.agent is not None
        message = (
            "agent: only, but a key is set too: leave key and key_file empty when only the agent is used"
        )
        raise InvalidRunbook([template_problem(reach.agent, message)])
    cert, cert_file = _secret(reach.cert, context), text(reach.cert_file, context)
    if (cert is not None or cert_file is not None) and key is None and key_file is None:
        where = reach.cert if cert is not None else reach.cert_file
        assert where is not None
        raise InvalidRunbook([template_problem(where, "a certificate needs its key (key or key_file)")])
    return Settings(
        user=text(reach.user, context),
        port=int(port) if port is not None else None,
        key_file=_path(key_file, base),
        key=key,
        cert_file=_path(cert_file, base),
        cert=cert,
        agent=chosen,
    )


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
    return RenderedHop(found.host, Settings(user=found.user, port=found.port))


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
