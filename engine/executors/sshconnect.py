"""Opening the one SSH connection per host, through its ProxyJump hosts: the host key checked first.

What to connect to comes from `sshconfig`, what to offer from `sshkeys`, the host keys from `knownhosts`,
and a failure is named by `sshdiagnosis`. Imports paramiko (0.2 s), so nothing on the `runbook validate`
path may import this module; the package reaches it lazily through `engine.executors.ssh_executor()`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import paramiko

from engine.errors import ConnectionFailed
from engine.executors.knownhosts import KNOWN_HOSTS, UnknownHostKey, known_hosts_name
from engine.executors.paramiko_private import (
    LegacyTransport,
    handshake,
    key_exchange_timed,
    set_idle_poll,
)
from engine.executors.sshconfig import hops, resolve
from engine.executors.sshdiagnosis import connection_error
from engine.executors.sshkeys import client_auth
from engine.executors.sshsocket import dial, where
from engine.transports import SSHOptions, SSHTarget

__all__ = ["MAX_JUMPS", "close_chain", "open_chain", "resolve"]

MAX_JUMPS = 5
_IDLE_POLL = 1.0  # seconds between a connected transport thread's checks for being closed (paramiko: 0.1)

# paramiko logs its transport thread's failures with a traceback; with no handler configured Python's
# last-resort handler would print them raw on the terminal (a garbage banner → a paramiko traceback). The
# same failure reaches us as an exception, which we report in one line: paramiko's own log goes nowhere.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def open_chain(target: SSHTarget, options: SSHOptions, depth: int = 0) -> list[paramiko.SSHClient]:
    """Connect to `target` (resolved), through its ProxyJump hosts if any; the last client is the target's.

    Like `ssh -J a,b`: connect to a (with a's own config, ProxyJump included), then to b through a
    direct-tcpip channel of a's transport, then to the target through b. Every hop's host key is checked.
    """
    jumps = hops(target, options)
    if not jumps:
        return [_connect(target, options, None)]
    if depth >= MAX_JUMPS:
        raise ConnectionFailed(f"{target.name}: ProxyJump nests more than {MAX_JUMPS} hosts deep")
    chain = open_chain(jumps[0], options, depth + 1)
    try:
        for hop in [*jumps[1:], replace(target, proxy_jump=None, jump=())]:
            chain.append(_connect(hop, options, _tunnel(chain[-1], hop, options)))
    except BaseException:
        close_chain(chain)
        raise
    return chain


def close_chain(chain: list[paramiko.SSHClient]) -> None:
    for client in reversed(chain):
        client.close()


def _tunnel(via: paramiko.SSHClient, hop: SSHTarget, options: SSHOptions) -> paramiko.Channel:
    transport = via.get_transport()
    assert transport is not None and hop.hostname is not None and hop.port is not None
    try:
        return transport.open_channel(
            "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=options.connect_timeout
        )
    except (paramiko.SSHException, OSError) as error:
        raise ConnectionFailed(f"{hop.name}: the jump host cannot reach {where(hop)}: {error}") from None


def _connect(target: SSHTarget, options: SSHOptions, sock: paramiko.Channel | None) -> paramiko.SSHClient:
    """One authenticated client; the host key is checked before anything is sent to the host."""
    known_hosts = os.path.expanduser(options.known_hosts)
    client = paramiko.SSHClient()
    name = known_hosts_name(target)
    try:
        known = KNOWN_HOSTS.keys(known_hosts, name)
    except (OSError, paramiko.SSHException, ValueError) as error:
        raise ConnectionFailed(f"{target.name}: cannot read {known_hosts}: {error}") from None
    for (
        key_type,
        key,
    ) in known.items():  # paramiko checks them, and prefers their type, as it would the file's
        client.get_host_keys().add(name, key_type, key)
    client.set_missing_host_key_policy(UnknownHostKey(target.name, known_hosts, options.trust_new_keys))
    auth = client_auth(target)
    direct = sock is None
    try:
        client.connect(
            target.hostname or target.name,
            target.port or 22,
            username=target.user,
            timeout=options.negotiation_timeout,  # the banner and the key exchange (the socket is ours)
            banner_timeout=options.banner_timeout,
            auth_timeout=options.auth_timeout,
            channel_timeout=options.connect_timeout,
            sock=sock or dial(target, options),
            transport_factory=key_exchange_timed(
                LegacyTransport if target.legacy_rsa else paramiko.Transport, options.connect_timeout
            ),
            **auth,
        )
    except (paramiko.SSHException, OSError, EOFError, ValueError) as error:
        reached = handshake(client.get_transport())
        client.close()
        raise connection_error(target, error, reached, known_hosts, options, direct) from None
    except BaseException:  # our HostKeyError (from UnknownHostKey), Ctrl-C: close, pass on as they are
        client.close()
        raise
    transport = client.get_transport()
    assert transport is not None
    # No `set_keepalive`: the heartbeat (heartbeat.py) already sends a request every interval, one that
    # expects an answer. The transport thread polls its socket every 0.1 s (paramiko's default) to notice
    # a close; with hundreds of hosts that is thousands of wake-ups a second, each taking the GIL from
    # whoever works. Data still wakes it at once; only noticing our own close may take up to `_IDLE_POLL`.
    set_idle_poll(transport, _IDLE_POLL)
    return client
