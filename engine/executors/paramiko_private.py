"""Every use of paramiko's private or undocumented API, in one room: a paramiko upgrade must test these.

paramiko gives no public way to (1) sign with SHA-1 `ssh-rsa`, which it no longer offers, (2) ask a server
whether it would accept a key without signing anything (RFC 4252's query), (3) slow the transport thread's
idle poll, (4) time the key exchange, or (5) tell how far a handshake got before it failed. Each is done here
and nowhere else, by names paramiko may change in any release. After an upgrade run
`tests/test_ssh_errors.py` (legacy RSA: `LegacyRSAKey`, `LegacyTransport`, `KeyQuery`; silent, banner-only
and resetting peers: `key_exchange_timed`, `handshake`) and `tests/test_executors_ssh.py` (every
connection: `set_idle_poll`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko
from cryptography.hazmat.primitives import hashes
from paramiko.auth_handler import AuthHandler
from paramiko.common import MSG_USERAUTH_FAILURE, MSG_USERAUTH_PK_OK, cMSG_USERAUTH_REQUEST


class LegacyRSAKey(paramiko.RSAKey):
    """An RSA key that can also sign with SHA-1 (`ssh-rsa`), which paramiko no longer offers; used only for
    a host whose ~/.ssh/config allows it (`PubkeyAcceptedAlgorithms +ssh-rsa`).

    PRIVATE API: `RSAKey.HASHES`, the algorithm → hash table paramiko signs with."""

    HASHES = {**paramiko.RSAKey.HASHES, "ssh-rsa": hashes.SHA1}  # type: ignore[misc]  # noqa: RUF012


class LegacyTransport(paramiko.Transport):
    """A transport that may pick `ssh-rsa` for public-key authentication (paramiko's list no longer has it).

    PRIVATE API: `Transport._preferred_pubkeys`."""

    _preferred_pubkeys = (*paramiko.Transport._preferred_pubkeys, "ssh-rsa")  # type: ignore[attr-defined]


class KeyQuery(AuthHandler):
    """Asks the server whether it would accept a public key with a given signature algorithm, signing
    nothing: RFC 4252's query (a publickey request without a signature), answered PK_OK or FAILURE.

    PRIVATE API: `paramiko.auth_handler.AuthHandler`, its `_client_handler_table`, `paramiko.common`'s
    message numbers, `Transport._send_message` and `Transport.auth_handler`."""

    def __init__(self, transport: paramiko.Transport) -> None:
        super().__init__(transport)
        self.answers: queue.Queue[bool] = queue.Queue()
        transport.auth_handler = self

    @property
    def _client_handler_table(self) -> dict[int, Any]:
        table: dict[int, Any] = dict(super()._client_handler_table)  # type: ignore[misc]
        table[MSG_USERAUTH_PK_OK] = lambda message: self.answers.put(True)
        table[MSG_USERAUTH_FAILURE] = lambda message: self.answers.put(False)
        return table

    def accepts(self, user: str, algorithm: str, key: paramiko.PKey, timeout: float) -> bool | None:
        message = paramiko.Message()
        message.add_byte(cMSG_USERAUTH_REQUEST)
        for text in (user, "ssh-connection", "publickey"):
            message.add_string(text)
        message.add_boolean(False)
        message.add_string(algorithm)
        message.add_string(key.asbytes())
        self.transport._send_message(message)  # type: ignore[attr-defined]
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            return None


def set_idle_poll(transport: paramiko.Transport, seconds: float) -> None:
    """How often a connected transport's thread wakes to check whether it was closed (paramiko: 0.1 s).

    UNDOCUMENTED API: `Transport.sock`, and paramiko reading its timeout as the poll interval."""
    transport.sock.settimeout(seconds)


def key_exchange_timed(kind: type[paramiko.Transport], seconds: float) -> Callable[..., paramiko.Transport]:
    """A `transport_factory` for `SSHClient.connect` whose transports give the key exchange `seconds` after
    the banner (paramiko: 15 s, whatever the connection's own timeouts say).

    UNDOCUMENTED API: `Transport.handshake_timeout`, and `SSHClient.connect` calling the factory with the
    socket and keyword arguments."""

    def make(sock: Any, **kwargs: Any) -> paramiko.Transport:
        transport = kind(sock, **kwargs)
        transport.handshake_timeout = seconds
        return transport

    return make


@dataclass(frozen=True)
class Handshake:
    """How far a connection's handshake got: the peer's banner (empty: none), the key exchange, and whether
    the key exchange's time ran out."""

    banner: str
    keys_exchanged: bool
    timed_out: bool = False


def handshake(transport: paramiko.Transport | None) -> Handshake:
    """What the peer said before a failure, so it is named by its cause and not by the step paramiko was
    at when it gave up waiting ("No existing session" for a key exchange that never came).

    UNDOCUMENTED API: `Transport.remote_version`, `Transport.initial_kex_done`, `Transport.packetizer` and
    its `handshake_timed_out()`."""
    if transport is None:
        return Handshake("", False)
    return Handshake(
        str(transport.remote_version or ""),
        bool(transport.initial_kex_done),
        bool(transport.packetizer.handshake_timed_out()),
    )
