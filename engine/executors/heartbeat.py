"""A keepalive that expects answers: a peer that stops answering is declared dead within a bounded time.

paramiko's own keepalive only sends (`want_reply` false), so a stalled peer — a frozen host, a stopped sshd,
a network path that drops everything — is never noticed: a command without a timeout waits forever, and a
timeout's kill waits on a channel that never opens. Like OpenSSH's `ServerAliveInterval` and
`ServerAliveCountMax`, this sends a request that needs a reply every `interval` seconds; after `count_max`
intervals without any reply it closes the transport. Every command on it then ends without an exit status,
which the runner records as *unknown*: the command may still be running on the host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import paramiko

DeadCallback = Callable[[str], None]
"""Told once, with the reason, when the peer is declared dead."""

_REQUEST = "keepalive@openssh.com"  # sshd answers an unknown global request with a failure: an answer


def watch(transport: paramiko.Transport, interval: float, count_max: int, on_dead: DeadCallback) -> None:
    """Start watching `transport` (a daemon thread that ends with it)."""
    thread = threading.Thread(
        target=_watch, args=(transport, interval, count_max, on_dead), name="ssh-heartbeat", daemon=True
    )
    thread.start()


def _watch(transport: paramiko.Transport, interval: float, count_max: int, on_dead: DeadCallback) -> None:
    pause = threading.Event()  # never set: a sleep
    while transport.is_active() and not pause.wait(interval):
        answered = threading.Event()
        threading.Thread(
            target=_ask, args=(transport, answered), name="ssh-heartbeat-ask", daemon=True
        ).start()
        if answered.wait(interval * count_max) or not transport.is_active():
            continue
        on_dead(f"no answer to keepalives for {interval * count_max:g}s")
        transport.close()
        return


def _ask(transport: paramiko.Transport, answered: threading.Event) -> None:
    """One request; returns (setting `answered`) on any reply, or when the transport closes."""
    try:
        transport.global_request(_REQUEST, wait=True)
    except (paramiko.SSHException, OSError, EOFError):
        return
    if transport.is_active():
        answered.set()
