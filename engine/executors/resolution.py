"""Where each host name resolves today: address, port, user, the keys offered, the jump hosts on the way.

A reviewed plan names hosts; ~/.ssh/config decides where a name goes. A plan saved with `plan --save`
records that resolution, and `run --plan` (and a resume, through `differences`) compares it with today's:
a Host alias moved to another machine, another User, Port or IdentityFile, or a changed key file, refuses
the run instead of running reviewed commands somewhere nobody reviewed. Never a secret: an inline key is
recorded by its public fingerprint only. The agent's keys are not recorded (they change with the session).

Imports paramiko (to read ~/.ssh/config as the connection will, and key files), so it is imported only where
a plan is saved or checked, or ~/.ssh/config exists to be shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from engine.errors import ConnectionFailed
from engine.executors.factory import defer_invoke
from engine.transports import SSHOptions, SSHTarget

defer_invoke()  # before paramiko's first import, just below: `plan` would pay ~30 ms for invoke otherwise

from engine.executors.sshconfig import hops, resolve  # noqa: E402
from engine.executors.sshkeys import default_key_files, public_fingerprint  # noqa: E402

_MAX_DEPTH = 5  # as `sshconnect.MAX_JUMPS`


def record(targets: Iterable[SSHTarget], options: SSHOptions | None = None) -> dict[str, Any]:
    """Each target's resolution by name, in the order given (a name given twice is recorded once)."""
    options = options or SSHOptions()
    fingerprints: dict[str, str] = {}
    found: dict[str, Any] = {}
    for target in targets:
        found.setdefault(target.name, _one(target, options, fingerprints, 0))
    return found


def differences(recorded: Mapping[str, Any], today: Mapping[str, Any]) -> str | None:
    """None when every name resolves as recorded; else, per name, what moved (`address 10.0.0.5 → 10.0.0.9`)."""
    changes = []
    for name in sorted(set(recorded) | set(today)):
        was, now = recorded.get(name), today.get(name)
        if was == now:
            continue
        if not isinstance(was, dict) or not isinstance(now, dict):
            changes.append(
                f"{name}: {'not in the reviewed plan' if was is None else 'no longer in the plan'}"
            )
            continue
        moved = [f"{key} {_show(was.get(key))} → {_show(now.get(key))}" for key in _keys(was, now)]
        changes.append(f"{name}: {', '.join(moved)}")
    return "; ".join(changes) if changes else None


def describe(resolved: Mapping[str, Any]) -> str:
    """One host's resolution in words, for `plan`: `deploy@10.0.0.5:2222, key PATH (SHA256:…), via …`."""
    if "error" in resolved:
        return f"cannot resolve: {resolved['error']}"
    keys = ", ".join(f"key {path} ({fingerprint})" for path, fingerprint in resolved["keys"].items())
    offered = [keys] if keys else []
    if resolved["agent"]:
        offered.append("the SSH agent")
    via = [f"{hop['user']}@{hop['address']}:{hop['port']}" for hop in resolved["via"] if "error" not in hop]
    return (
        f"{resolved['user']}@{resolved['address']}:{resolved['port']}"
        + (f", {', '.join(offered)}" if offered else ", no key")
        + (f", via {' → '.join(via)}" if via else "")
    )


def _one(target: SSHTarget, options: SSHOptions, fingerprints: dict[str, str], depth: int) -> dict[str, Any]:
    try:
        resolved = resolve(target, options)
        jumps = hops(resolved, options) if depth < _MAX_DEPTH else []
    except ConnectionFailed as error:
        return {"error": str(error)}
    return {
        "address": resolved.hostname,
        "port": resolved.port,
        "user": resolved.user,
        "keys": _keys_offered(resolved, fingerprints),
        "agent": resolved.offers_agent,
        "via": [_one(hop, options, fingerprints, depth + 1) for hop in jumps],
    }


def _keys_offered(target: SSHTarget, fingerprints: dict[str, str]) -> dict[str, str]:
    """The key files offered (the host's, else the default ones that exist) by path, with their public
    fingerprint; an inline key as `inline`."""
    if target.key is not None:
        return {"inline": public_fingerprint(target, None)}
    paths = [target.key_file] if target.key_file is not None else default_key_files(target)
    for path in paths:
        if path not in fingerprints:
            fingerprints[path] = public_fingerprint(target, path) if os.path.exists(path) else "missing"
    return {path: fingerprints[path] for path in paths}


def _keys(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return [key for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)]


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(describe(v) if isinstance(v, dict) else str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {v}" for k, v in value.items()) + "}"
    return str(value)
