"""A host's spare session: opened, and its wrapper started, before the command that will use it is known.

A command's session costs the node sshd's session set-up, a login shell, the wrapper's `sh`, its FIFOs and
two `tee`s (~4 ms of the node's CPU), and the engine a round trip. A run spends most of its time waiting
(on local commands, on the operator), the machines idle; a step on many hosts at once is where CPU is
short. So the run asks a host that a later step uses to open its next session while it waits on something
else (`SSHExecutor.warm`): the wrapper's first part is the same for every command (`wrapper.command`), and
the step then only sends its command (`wrapper.job`), its environment and the go.

One spare per host at most, opened only while the host runs nothing: with the control channel it stays
under sshd's MaxSessions, since the first command takes it before any other opens. A host that refuses it
(MaxSessions 1: the control channel holds the only session), three tries in a row, gets none again on that
connection; a refused session elsewhere closes an idle spare first. A spare never used (the run ended or
stopped) is closed: its wrapper's input ends before any command came, so it exits 125 and removes its FIFOs
and files; nothing ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress

import paramiko

TAKE_WAIT = 30.0
"""Seconds a command waits for a spare being opened rather than opening a session of its own: the spare
is that session, opened earlier; a peer slower than this is no worse off than without it."""


class Spare:
    """The one spare session of a host (thread-safe): `open` it, `take` it for a command, `close` it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channel: paramiko.Channel | None = None
        self._opening: threading.Event | None = None
        self._refused_on: object | None = None  # the connection that refused one: never again on it
        self._closed = False

    def open(self, opener: Callable[[], paramiko.Channel | None], connection: object) -> None:
        """Open the spare here, in the caller's thread, unless the host has one, is opening one, or refused
        one on this `connection`; `opener` returns None when the host refuses the session (and raises when
        it fails otherwise: a lost connection, which a reconnect may mend, is no refusal)."""
        with self._lock:
            if self._closed or self._channel is not None or self._opening is not None:
                return
            if self._refused_on is connection:
                return
            self._opening = opened = threading.Event()
        channel, refused = None, False
        try:
            channel = opener()
            refused = channel is None
        finally:
            with self._lock:
                self._opening = None
                if refused:
                    self._refused_on = connection
                if self._closed and channel is not None:
                    channel.close()
                else:
                    self._channel = channel
            opened.set()

    @property
    def refused(self) -> bool:
        """The host refused a spare session: none is asked for again on that connection."""
        return self._refused_on is not None

    def take(self, transport: paramiko.Transport) -> paramiko.Channel | None:
        """The spare, for a command on `transport` (waiting for one being opened); None if there is none, or
        it is not usable there (another connection's, or closed: its wrapper is gone)."""
        with self._lock:
            opening = self._opening
        if opening is not None:
            opening.wait(TAKE_WAIT)
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is None:
            return None
        if channel.get_transport() is not transport or channel.closed or channel.exit_status_ready():
            channel.close()
            return None
        return channel

    def drop(self) -> bool:
        """Close an idle spare (its host refused a session: the spare's slot is wanted); True if one was."""
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is None:
            return False
        with suppress(paramiko.SSHException, OSError):
            channel.close()
        return True

    def close(self) -> None:
        """No more spares: the idle one is closed (its wrapper exits 125), one being opened on its arrival."""
        with self._lock:
            self._closed = True
        self.drop()
