"""The TCP connection under an SSH session: where it goes, and a socket tuned for SSH's small packets."""

from __future__ import annotations

import socket

from engine.transports import SSHOptions, SSHTarget


def where(target: SSHTarget) -> str:
    """`address:port` as dialled, for messages."""
    return f"{target.hostname or target.name}:{target.port or 22}"


class _PromptAcks(socket.socket):
    """A socket that acknowledges what it received at once (Linux's TCP_QUICKACK after every read).

    sshd sets TCP_NODELAY only for sessions with a terminal, so its small packets wait (Nagle) for our ACK
    of the one before, which Linux delays up to 40 ms: measured on loopback, the first session after login
    took 45 ms to open instead of 3 (sshd's post-login debug message is the unacknowledged one), and
    every such stall recurs wherever sshd sends two small packets in a row."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        data = super().recv(size, flags)
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


def dial(target: SSHTarget, options: SSHOptions) -> socket.socket:
    """The TCP connection, with Nagle off before the first packet (each exchange of the key exchange, the
    login and every command is a few small packets: Nagle + delayed ACK halved the login's speed) and
    prompt ACKs where the system has them."""
    sock = socket.create_connection(
        (target.hostname or target.name, target.port or 22), options.connect_timeout
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not hasattr(socket, "TCP_QUICKACK"):  # Linux only
        return sock
    timeout = sock.gettimeout()
    acking = _PromptAcks(fileno=sock.detach())
    acking.settimeout(timeout)
    return acking
