"""The client's keys and certificates: what a connection offers, loaded in memory, and named in errors.

An inline key is a secret: it is parsed from memory, never written anywhere, and no message quotes it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from typing import Any

import paramiko

from engine.errors import ConnectionFailed
from engine.executors.paramiko_private import LegacyRSAKey
from engine.transports import Agent, SSHTarget, describe_auth

_SHA2_RSA = ["rsa-sha2-512", "rsa-sha2-256"]
_DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa")
_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def client_auth(target: SSHTarget) -> dict[str, Any]:
    """`SSHClient.connect`'s authentication arguments: the key (inline ones parsed in memory), its
    certificate, whether the agent and ~/.ssh/id_* are offered, and SHA-1 signing where the host allows it
    (with `LegacyTransport`, which `sshconnect` picks)."""
    auth = _auth(target)
    if target.legacy_rsa:  # the operator allowed SHA-1 for this host: RSA keys sign `ssh-rsa` only
        auth.update(disabled_algorithms={"pubkeys": _SHA2_RSA})
    return auth


def _auth(target: SSHTarget) -> dict[str, Any]:
    if target.agent is Agent.ONLY:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise ConnectionFailed(
                f"{target.name}: only the SSH agent may be used, but SSH_AUTH_SOCK is not set"
            )
        return {"allow_agent": True, "look_for_keys": False}
    auth: dict[str, Any] = {"allow_agent": target.offers_agent, "look_for_keys": target.offers_default_keys}
    if target.key is not None:
        auth["pkey"] = _certified(target, _legacy(target, _inline_key(target)))
    elif target.key_file is not None:
        if not os.path.isfile(target.key_file):
            raise ConnectionFailed(f"{target.name}: key file {target.key_file} not found")
        if target.legacy_rsa:  # loaded here: paramiko's own loading makes keys that cannot sign SHA-1
            auth["pkey"] = _certified(target, _legacy(target, _key_file(target, target.key_file)))
        elif target.cert is None and target.cert_file is None:
            auth["pkey"] = KEY_FILES.load(target, target.key_file)
        else:
            auth["pkey"] = _certified(target, _key_file(target, target.key_file))
    elif target.legacy_rsa:  # paramiko would load ~/.ssh/id_rsa as a key that cannot sign SHA-1
        auth["look_for_keys"] = False
        default = os.path.expanduser("~/.ssh/id_rsa")
        if os.path.isfile(default):
            auth["pkey"] = _legacy(target, _key_file(target, default))
    return auth


def _legacy(target: SSHTarget, key: paramiko.PKey) -> paramiko.PKey:
    """`key`, able to sign `ssh-rsa` when the host allows SHA-1 and it is an RSA key."""
    if target.legacy_rsa and isinstance(key, paramiko.RSAKey) and not isinstance(key, LegacyRSAKey):
        return LegacyRSAKey(key=key.key)
    return key


def rsa_keys_offered(target: SSHTarget) -> list[paramiko.PKey]:
    """The RSA public keys a connection to `target` offered: its key (inline or file), the agent's, or
    ~/.ssh/id_rsa when no key is given."""
    keys: list[paramiko.PKey] = []
    try:
        if target.key is not None:
            keys.append(_inline_key(target))
        elif target.key_file is not None:
            keys.append(_key_file(target, target.key_file))
        elif target.offers_default_keys and os.path.isfile(path := os.path.expanduser("~/.ssh/id_rsa")):
            keys.append(_key_file(target, path))
    except ConnectionFailed:
        pass
    if target.offers_agent:
        try:
            keys += list(paramiko.Agent().get_keys())
        except (paramiko.SSHException, OSError):
            pass
    return [key for key in keys if key.get_name() == "ssh-rsa"]


def keys_tried(target: SSHTarget) -> str:
    """What `connect` offered (`describe_auth`), with the agent's keys and the default key files named."""
    named = []
    if target.offers_agent:
        try:
            named += [f"agent {key.get_name()} {key.fingerprint}" for key in paramiko.Agent().get_keys()]
        except (paramiko.SSHException, OSError):
            pass
    named += default_key_files(target)
    return describe_auth(target) + (f" ({', '.join(named)})" if named else "")


def default_key_files(target: SSHTarget) -> list[str]:
    """The ~/.ssh/id_* files that exist and are offered when the host names no key."""
    if not target.offers_default_keys:
        return []
    return [p for name in _DEFAULT_KEYS if os.path.exists(p := os.path.expanduser(f"~/.ssh/{name}"))]


def public_fingerprint(target: SSHTarget, path: str | None) -> str:
    """The SHA256 fingerprint of the key in `path` (None: the inline key), as `ssh-keygen -l` prints it; a
    file that is no key we can read (encrypted, say) by the sha256 of its bytes, so a change still shows."""
    try:
        return (_inline_key(target) if path is None else _key_file(target, path)).fingerprint
    except ConnectionFailed:
        if path is None:
            return "unreadable"
    try:
        with open(path, "rb") as file:
            return f"file sha256:{hashlib.sha256(file.read()).hexdigest()}"
    except OSError as error:
        return f"unreadable: {error.strerror or error}"


def _inline_key(target: SSHTarget) -> paramiko.PKey:
    """The inline key, parsed from memory; an error never quotes it."""
    for kind in _KEY_TYPES:
        try:
            return kind.from_private_key(io.StringIO(target.key or ""))
        except paramiko.PasswordRequiredException:
            raise ConnectionFailed(
                f"{target.name}: the inline key is encrypted; load it into ssh-agent and use the agent instead"
            ) from None
        except (paramiko.SSHException, ValueError):
            continue
    raise ConnectionFailed(
        f"{target.name}: the inline key is not an unencrypted ed25519, ECDSA or RSA private key"
    )


def _key_file(target: SSHTarget, path: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise ConnectionFailed(
            f"{target.name}: key file {path} is encrypted; load it into ssh-agent and use the agent instead"
        ) from None
    except (paramiko.SSHException, OSError, ValueError) as error:
        raise ConnectionFailed(f"{target.name}: cannot read key file {path}: {error}") from None


class KeyFiles:
    """Key files read once per process while they (and their `-cert.pub`) stay as they are: 250 hosts
    sharing one key file would otherwise parse it 250 times (paramiko tries each key type on the file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[tuple[str, str], tuple[tuple[int, int, int, int], paramiko.PKey]] = {}

    def load(self, target: SSHTarget, path: str) -> paramiko.PKey:
        """The key in `path` with `<path>-cert.pub` attached when that exists (as ssh and paramiko's
        `key_filename` do)."""
        cert = f"{path}-cert.pub"
        with self._lock:
            now = (*_stamp(path), *_stamp(cert))
            cached = self._read.get((path, cert))
            if cached is not None and cached[0] == now:
                return cached[1]
            key = _key_file(target, path)
            if now[2] >= 0:
                try:
                    key.load_certificate(cert)
                except (paramiko.SSHException, OSError, ValueError) as error:
                    raise ConnectionFailed(
                        f"{target.name}: certificate {cert} does not fit the key: {error}"
                    ) from None
            self._read[(path, cert)] = (now, key)
            return key


KEY_FILES = KeyFiles()


def _stamp(name: str) -> tuple[int, int]:
    try:
        stat = os.stat(name)
    except FileNotFoundError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


def _certified(target: SSHTarget, key: paramiko.PKey) -> paramiko.PKey:
    """`key` with its certificate (inline text or a file) attached, when one is given."""
    try:
        if target.cert is not None:
            key.load_certificate(target.cert.strip())
        elif target.cert_file is not None:
            key.load_certificate(target.cert_file)
    except (paramiko.SSHException, OSError, ValueError) as error:
        where = "the inline certificate" if target.cert is not None else f"certificate {target.cert_file}"
        raise ConnectionFailed(f"{target.name}: {where} does not fit the key: {error}") from None
    return key
