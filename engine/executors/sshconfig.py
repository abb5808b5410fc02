"""~/.ssh/config, read as OpenSSH reads it: what the runbook leaves open about a host, filled from there.

paramiko parses the file; what it does not do (Include, the refusal of ProxyCommand, ServerAlive*,
PubkeyAcceptedAlgorithms) is done here. Nothing here connects.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
from dataclasses import replace

import paramiko

from engine.errors import ConnectionFailed
from engine.transports import DESTINATION_FORMS, SSHOptions, SSHTarget, expand_home, parse_destination

LEGACY_OPTION = "PubkeyAcceptedAlgorithms +ssh-rsa"
"""What allows SHA-1 `ssh-rsa` signatures for a host, as OpenSSH spells it."""
_INCLUDE = re.compile(r"^\s*include\s*=?\s*(?P<paths>.+?)\s*$", re.I)
_BLOCK = re.compile(r"^\s*(host|match)\b", re.I)
_MAX_INCLUDE_DEPTH = 16  # OpenSSH's own limit (READCONF_MAX_DEPTH)


def resolve(target: SSHTarget, options: SSHOptions) -> SSHTarget:
    """Fill what the runbook left open from ~/.ssh/config, as OpenSSH does.

    The runbook plays the part of OpenSSH's command line: an explicit user, port or key wins, the config
    fills the rest, and the first value the config gives for a key wins. A config IdentityFile acts like
    an explicit key (only that key is offered); the first one that exists is used.
    """
    path = os.path.expanduser(options.ssh_config)
    found = _load_config(target.name, path).lookup(target.name)
    if found.get("proxycommand", "none").lower() != "none" and not found.get("proxyjump"):
        raise ConnectionFailed(f"{target.name}: ProxyCommand in {path} is not supported (ProxyJump is)")
    jump = target.proxy_jump or (None if target.jump else found.get("proxyjump"))
    identity = None
    if target.offers_default_keys:
        identity = next((key for key in found.get("identityfile", []) if os.path.exists(key)), None)
    try:
        port = target.port or int(found.get("port", 22))
    except ValueError:
        raise ConnectionFailed(f"{target.name}: bad Port in {path}: {found.get('port')!r}") from None
    alive = _alive_settings(target.name, path, found)
    accepted = found.get("pubkeyacceptedalgorithms") or found.get("pubkeyacceptedkeytypes") or ""
    return replace(
        target,
        hostname=target.hostname or found.get("hostname", target.name),
        user=target.user or found.get("user") or getpass.getuser(),
        port=port,
        key_file=expand_home(target.key_file) if target.key_file else identity,
        proxy_jump=None if jump is None or jump.lower() == "none" else jump,
        alive_interval=target.alive_interval or alive[0],
        alive_count_max=target.alive_count_max or alive[1],
        legacy_rsa=target.legacy_rsa or _allows_ssh_rsa(accepted),
    )


def hops(target: SSHTarget, options: SSHOptions) -> list[SSHTarget]:
    """The jump hosts on the way to `target` (resolved), each with its own config: the runbook's, else
    the ProxyJump text (`a,user@b:2222`)."""
    if target.jump:
        return [resolve(hop, options) for hop in target.jump]
    if target.proxy_jump is not None:
        return [resolve(_parse_jump(spec, target.name), options) for spec in target.proxy_jump.split(",")]
    return []


def _allows_ssh_rsa(accepted: str) -> bool:
    """Whether OpenSSH's `PubkeyAcceptedAlgorithms` (or its old name `PubkeyAcceptedKeyTypes`) lets SHA-1
    `ssh-rsa` signatures in: `+ssh-rsa`, `^ssh-rsa`, or a list naming it (`-ssh-rsa` takes it out)."""
    return any(word.strip().lstrip("+^") == "ssh-rsa" for word in accepted.split(","))


def _alive_settings(name: str, path: str, found: paramiko.SSHConfigDict) -> tuple[float | None, int | None]:
    """`ServerAliveInterval` and `ServerAliveCountMax`: how soon a silent peer is declared dead."""
    try:
        interval = float(found["serveraliveinterval"]) if "serveraliveinterval" in found else None
        count = int(found["serveralivecountmax"]) if "serveralivecountmax" in found else None
    except ValueError:
        raise ConnectionFailed(f"{name}: bad ServerAlive* setting in {path}") from None
    return (interval if interval and interval > 0 else None), (count if count and count > 0 else None)


def _load_config(name: str, path: str) -> paramiko.SSHConfig:
    if not os.path.exists(path):
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_text(_with_includes(path, 0))
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as error:
        raise ConnectionFailed(f"{name}: cannot read {path}: {error}") from None


def _with_includes(path: str, depth: int) -> str:
    """The config's text with every `Include` replaced by the files it names, as OpenSSH reads it (paramiko
    does not): globs, several paths per line, `~`, and relative paths taken from ~/.ssh. An included file
    may open `Host` blocks of its own; the block the `Include` stood in is reopened after it."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise paramiko.ConfigParseError(f"Include nests deeper than {_MAX_INCLUDE_DEPTH} files (a loop?)")
    lines: list[str] = []
    block = "Host *"
    with open(path, encoding="utf-8") as file:
        for line in file:
            if _BLOCK.match(line):
                block = line.strip()
            match = _INCLUDE.match(line)
            if match is None:
                lines.append(line.rstrip("\n"))
                continue
            for pattern in match["paths"].split():
                pattern = os.path.expanduser(pattern.strip('"'))
                if not os.path.isabs(pattern):
                    pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
                for included in sorted(glob.glob(pattern)):
                    if os.path.isfile(included):
                        lines += [_with_includes(included, depth + 1), block]
    return "\n".join(lines) + "\n"


def _parse_jump(spec: str, name: str) -> SSHTarget:
    found = parse_destination(spec)
    if found is None:
        raise ConnectionFailed(f"{name}: cannot parse ProxyJump host {spec!r}: expected {DESTINATION_FORMS}")
    return SSHTarget(name=found.host, user=found.user, port=found.port)
