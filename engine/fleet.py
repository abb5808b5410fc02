"""The run's executors, one per host: got ready for their next command while the run waits, released once
no later step needs them, the rest closed at the run's end.

A host that no later step needs is *released* (`Fleet.release_all_but`): one closer thread closes the released
hosts one after the other while the later steps run. An SSH host's close is a line on its control channel
(its node files deleted) and a disconnect, mostly CPU here: done at the run's end for every host at once, it
sat on the critical path of every run; done meanwhile, it costs the run nothing, as the later steps mostly
wait on their commands. One thread, not one per host: twenty closes at once slowed the next step's start
through the GIL; one after the other they do not.

`close()` (the run's end, every error path) stops the closer after the host it is closing, then closes every
host not closed yet, all at once (`_each`): no host waits for a released one queued before it. Each host is
closed exactly once. `kill_all()` (Ctrl-C, SIGTERM) passes over released hosts: nothing runs on them.

A host a later step needs is *warmed* (`Fleet.warm`) in the same way, by one thread of its own: its next
command's session is opened ahead (`engine.executors.sshspare`) while the run waits on something else.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

from engine.clock import Clock, WallClock
from engine.executors import Executor
from engine.targets import Host

CONNECT_AT_ONCE = 64
"""Hosts connected (and probed) at once. Each connection waits mostly on the network and the host, so
all of them go out together — up to this bound, which keeps threads and sockets sane at hundreds of hosts
and stays under a jump host's sshd MaxStartups ceiling (100) for the connections it forwards."""


@dataclass
class Fleet:
    """One executor per host (one SSH connection each, kept until no later step needs the host), each host's
    platform, and the clock its commands take time on (a rehearsal's is simulated)."""

    executors: dict[str, Executor] = field(default_factory=dict)
    platforms: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # programs not found, by host
    clock: Clock = field(default_factory=WallClock)
    unreachable: dict[str, str] = field(default_factory=dict)  # hosts that may be, and were: why
    local: set[str] = field(default_factory=set)  # hosts on this machine: nothing to release
    _closing: _Closer = field(init=False, repr=False, compare=False)
    _warming: _InTurn = field(init=False, repr=False, compare=False)
    _wanted: Callable[[str], bool] = field(default=lambda name: True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._closing = _Closer(self.executors)
        self._warming = _InTurn(self._warm, "warming")

    def executor(self, host: Host) -> Executor:
        return self.executors[host.name]

    def release_all_but(self, needed: Set[str]) -> None:
        """Close, in the background, every remote host outside `needed`: the run will not use it again."""
        self._closing.release(n for n in self.executors if n not in needed and n not in self.local)

    def close(self) -> None:
        """Every executor not closed yet, at once: an SSH host's close is a round trip (its node files
        deleted) and a disconnect, so 100 hosts one after the other would add 100 round trips to the end of
        every run. The closer ends first (after the host it is closing); a host it did not reach is closed
        here. A background close's error is raised once every host is closed."""
        self._warming.stop(wait=False)  # a host being warmed ends its spare when closed (`sshspare`)
        _each(self._closing.end(), lambda executor: executor.close())
        self._closing.raise_failure()

    def kill_all(self) -> None:
        """Stop every running command (Ctrl-C, SIGTERM); a released host runs none, and is passed over."""
        _each(self._closing.unreleased(), lambda executor: executor.kill_all())

    def warm(self, names: Iterable[str], wanted: Callable[[str], bool]) -> None:
        """Get these hosts' next command ready now (`Executor.warm`: an SSH host opens its next session), in
        the background, one host after the other: once the run first waits, or once a host's command ended and
        a later step needs it, while the run waits on other commands; one thread takes little of the CPU the
        steps starting meanwhile need. `wanted` is asked when a host's turn comes: by then the run may have
        gone past the last step that needed it."""
        self._wanted = wanted
        self._warming.add(n for n in names if n in self.executors and n not in self.local)

    def _warm(self, name: str) -> None:
        if self._wanted(name):
            with suppress(Exception):  # never raises (`Executor.warm`): a spare is only ever a head start
                self.executors[name].warm()


class _InTurn:
    """Names handed to one thread that `act`s on each in turn: started when there is work, gone when there is
    none left (a later `add` starts another); `stop` ends it after the name it is on."""

    def __init__(self, act: Callable[[str], None], name: str) -> None:
        self._act, self._name = act, name
        self._lock = threading.Lock()
        self._waiting: deque[str] = deque()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, names: Iterable[str]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._waiting.extend(names)
            if self._waiting and self._thread is None:  # `stop` never joins a thread that did not start
                worker = threading.Thread(target=self._work, name=self._name, daemon=True)
                worker.start()
                self._thread = worker

    def stop(self, wait: bool = True) -> None:
        """No more work: back once the thread has done the name it is on (`wait`), or at once."""
        with self._lock:
            self._stopped, worker = True, self._thread
        if wait and worker is not None:
            worker.join()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._stopped or not self._waiting:
                    self._thread = None
                    return
                name = self._waiting.popleft()
            try:
                self._act(name)  # raises for a bug only: the closer and the warmer keep their errors
            except BaseException:
                with self._lock:  # the next `add` starts a thread for what is left
                    self._thread = None
                raise


class _Closer:
    """The released hosts, closed one after the other by one thread, and the hosts closed (or being closed)
    so far: each exactly once."""

    def __init__(self, executors: dict[str, Executor]) -> None:
        self._executors = executors
        self._lock = threading.Lock()
        self._released: set[str] = set()
        self._closed: set[str] = set()  # by the closer, or by `end`: never twice
        self._turns = _InTurn(self._close, "releasing")
        self._failure: BaseException | None = None

    def release(self, names: Iterable[str]) -> None:
        with self._lock:
            new = [name for name in names if name not in self._released]
            self._released.update(new)
        self._turns.add(new)

    def unreleased(self) -> list[Executor]:
        with self._lock:
            return [e for name, e in self._executors.items() if name not in self._released]

    def end(self) -> list[Executor]:
        """Stop the closer (back once it has closed the host it is on); the executors left to close."""
        self._turns.stop()
        with self._lock:
            left = [name for name in self._executors if name not in self._closed]
            self._closed.update(left)
        return [self._executors[name] for name in left]

    def raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _close(self, name: str) -> None:
        with self._lock:
            if name in self._closed:
                return
            self._closed.add(name)
        try:
            self._executors[name].close()
        except BaseException as error:  # raised in the run's thread, by `Fleet.close`
            self._failure = self._failure or error


def _each(executors: Iterable[Executor], do: Callable[[Executor], None]) -> None:
    """`do` for every executor, up to `CONNECT_AT_ONCE` at once (each mostly waits on its host)."""
    every = list(executors)
    if len(every) <= 1:
        for executor in every:
            do(executor)
        return
    with ThreadPoolExecutor(max_workers=min(CONNECT_AT_ONCE, len(every))) as pool:
        list(pool.map(do, every))
