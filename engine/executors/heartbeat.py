"""A keepalive that expects answers: a peer that stops answering is declared dead within a bounded time.

paramiko's own keepalive only sends (`want_reply` false), so a stalled peer — a frozen host, a stopped sshd,
a network path that drops everything — is never noticed: a command without a timeout waits forever, and a
timeout's kill waits on a channel that never opens. Like OpenSSH's `ServerAliveInterval` and
`ServerAliveCountMax`, this sends a request that needs a reply every `interval` seconds; after `count_max`
intervals without any reply it closes the transport. Every command on it then ends without an exit status,
which the runner records as *unknown*: the command may still be running on the host.

One thread keeps the time for every transport of the process (not one thread per host: 250 hosts would be
250 sleeping threads, each started while the connections go out); a request waiting for its answer gets a
short-lived thread of its own, as `Transport.global_request` blocks until the answer comes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paramiko

DeadCallback = Callable[[str], None]
"""Told once, with the reason, when the peer is declared dead."""

_REQUEST = "keepalive@openssh.com"  # sshd answers an unknown global request with a failure: an answer


class _Watched:
    """One transport's keepalive state: waiting until `due` to ask, or (`answered` set) for an answer."""

    def __init__(self, transport: paramiko.Transport, interval: float, count_max: int, on_dead: DeadCallback):
        self.transport = transport
        self.interval = interval
        self.count_max = count_max
        self.on_dead = on_dead
        self.due = time.monotonic() + interval  # the next request; while one waits: its deadline
        self.answered: threading.Event | None = None  # None: no request out


class _Watcher:
    """The one thread that asks every watched transport in turn and declares the silent ones dead."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: list[_Watched] = []
        threading.Thread(target=self._run, name="ssh-heartbeat", daemon=True).start()

    def add(self, watched: _Watched) -> None:
        with self._changed:
            self._watched.append(watched)
            self._changed.notify()

    def _answered(self) -> None:
        with self._changed:
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                self._watched = [
                    w for w in self._watched if w.transport.is_active() and not self._tick(w, now)
                ]
                wake = min((w.due for w in self._watched), default=None)
                self._changed.wait(None if wake is None else max(0.0, wake - now))

    def _tick(self, watched: _Watched, now: float) -> bool:
        """Advance one transport's keepalive; True once it is declared dead (then it is no longer watched)."""
        if watched.answered is not None and watched.answered.is_set():  # answered: ask again in `interval`
            watched.answered, watched.due = None, now + watched.interval
        if watched.due > now:
            return False
        if watched.answered is None:  # time to ask
            watched.answered = threading.Event()
            watched.due = now + watched.interval * watched.count_max
            threading.Thread(
                target=_ask,
                args=(watched.transport, watched.answered, self._answered),
                name="ssh-heartbeat-ask",
                daemon=True,
            ).start()
            return False
        watched.on_dead(f"no answer to keepalives for {watched.interval * watched.count_max:g}s")
        watched.transport.close()
        return True


_watcher: _Watcher | None = None
_watcher_lock = threading.Lock()


def watch(transport: paramiko.Transport, interval: float, count_max: int, on_dead: DeadCallback) -> None:
    """Watch `transport` until it closes (the process's one heartbeat thread starts with the first)."""
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = _Watcher()
        watcher = _watcher
    watcher.add(_Watched(transport, interval, count_max, on_dead))


def _ask(transport: paramiko.Transport, answered: threading.Event, tell: Callable[[], None]) -> None:
    """One request; sets `answered` (and tells the watcher) on any reply; returns when the transport closes."""
    try:
        transport.global_request(_REQUEST, wait=True)
    except (paramiko.SSHException, OSError, EOFError):
        return
    if transport.is_active():
        answered.set()
        tell()
