"""engine/fleet.py in process: released hosts closed in the background by one thread, one after the other;
the run's end waits for it and closes the rest at once; each host closed once; `kill_all` passes over the
released hosts. Which hosts a run releases, and when, is test_running.py's; against sshd, test_run_ssh.py's."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from test_running import FakeExecutor, ok

from engine.fleet import Fleet
from runbooks import wait_for


@dataclass
class Closing(FakeExecutor):
    """Says in `log` when its close begins and ends, and on which thread; `hold` keeps the close waiting."""

    log: list[tuple[str, str, str]] = field(default_factory=list)
    hold: threading.Event | None = None
    fails: bool = False

    def close(self) -> None:
        self.log.append(("begin", self.host, threading.current_thread().name))
        if self.hold is not None:
            assert self.hold.wait(10), "held too long"
        if self.fails:
            raise OSError(f"{self.host}: cannot close")
        self.log.append(("end", self.host, threading.current_thread().name))

    def kill_all(self) -> None:
        self.log.append(("kill", self.host, threading.current_thread().name))


def fleet_of(names: str, **held: threading.Event) -> tuple[Fleet, list[tuple[str, str, str]]]:
    """Hosts `names` (one letter each) and this machine (`local`); `held`: a host's close waits for that."""
    log: list[tuple[str, str, str]] = []
    executors = {n: Closing(n, ok, log=log, hold=held.get(n)) for n in [*names, "local"]}
    return Fleet(dict(executors), dict.fromkeys(executors, "linux"), local={"local"}), log


def closes(log: list[tuple[str, str, str]]) -> dict[str, int]:
    return {
        host: sum(1 for what, h, _ in log if (what, h) == ("begin", host)) for host in {h for _, h, _ in log}
    }


def test_released_hosts_are_closed_in_the_background_one_after_the_other() -> None:
    hold = threading.Event()
    fleet, log = fleet_of("abcd", a=hold)
    fleet.release_all_but({"d"})  # back at once: a's close waits, on the closer's thread
    wait_for(lambda: ("begin", "a", "releasing") in log, "a's close to begin")
    assert ("end", "a", "releasing") not in log
    hold.set()
    wait_for(lambda: sum(1 for what, *_ in log if what == "end") == 3, "a, b and c to be closed")
    assert [(what, host) for what, host, _ in log] == [
        ("begin", "a"),
        ("end", "a"),
        ("begin", "b"),
        ("end", "b"),
        ("begin", "c"),
        ("end", "c"),
    ]  # one after the other, never two at once; this machine and d (still needed) not
    assert {thread for *_, thread in log} == {"releasing"}
    fleet.release_all_but(set())  # released again: nothing closed twice
    fleet.close()
    assert closes(log) == {"a": 1, "b": 1, "c": 1, "d": 1, "local": 1}


def test_the_runs_end_waits_for_the_host_being_closed_and_closes_every_host_once() -> None:
    hold = threading.Event()
    fleet, log = fleet_of("abc", a=hold)
    fleet.release_all_but(set())
    wait_for(lambda: ("begin", "a", "releasing") in log, "a's close to begin")
    ending = threading.Thread(target=fleet.close)
    ending.start()
    ending.join(0.2)
    assert ending.is_alive(), "the run's end did not wait for the host being closed"
    hold.set()
    ending.join(10)
    assert not ending.is_alive()
    assert ("end", "a", "releasing") in log and closes(log) == {"a": 1, "b": 1, "c": 1, "local": 1}
    fleet.release_all_but(set())  # after the end, nothing is released (nor closed) again
    fleet.close()
    assert closes(log) == {"a": 1, "b": 1, "c": 1, "local": 1}


def test_kill_all_passes_over_released_hosts_and_does_not_wait_for_their_close() -> None:
    hold = threading.Event()
    fleet, log = fleet_of("abc", a=hold)
    fleet.release_all_but({"c"})
    wait_for(lambda: ("begin", "a", "releasing") in log, "a's close to begin")
    fleet.kill_all()  # Ctrl-C while the closer is on `a`: back at once
    assert sorted(host for what, host, _ in log if what == "kill") == ["c", "local"]
    hold.set()
    fleet.close()
    assert closes(log) == {"a": 1, "b": 1, "c": 1, "local": 1}


def test_a_close_that_fails_in_the_background_is_raised_at_the_runs_end_after_every_close() -> None:
    fleet, log = fleet_of("ab")
    executor = fleet.executors["a"]
    assert isinstance(executor, Closing)
    executor.fails = True
    fleet.release_all_but({"b"})
    wait_for(lambda: ("begin", "a", "releasing") in log, "a's close to begin")
    with pytest.raises(OSError, match="a: cannot close"):
        fleet.close()
    assert closes(log) == {"a": 1, "b": 1, "local": 1}


def test_the_runs_end_closes_its_hosts_at_once() -> None:
    """An SSH host's close is a round trip and a disconnect: 100 hosts closed one after the other added 100
    round trips to the end of every run. Each close here waits for all three to have begun: closed one
    after the other, the first one's wait breaks the barrier."""
    begun = threading.Barrier(3, timeout=10)
    closed: list[str] = []

    class AtOnce(FakeExecutor):
        def close(self) -> None:
            begun.wait()
            closed.append(self.host)

    Fleet({name: AtOnce(name, ok) for name in "abc"}, dict.fromkeys("abc", "linux")).close()
    assert sorted(closed) == ["a", "b", "c"]


@dataclass
class Warming(Closing):
    """Its warm raises what paramiko may (the host closed the connection) when `breaks`."""

    breaks: bool = False

    def warm(self) -> None:
        self.log.append(("warm", self.host, threading.current_thread().name))
        if self.breaks:
            raise EOFError


def test_a_host_whose_warm_breaks_stops_no_other_hosts_warming() -> None:
    """One thread warms the hosts in turn, each when `wanted` still says so; one that raises (a promise
    `Executor.warm` breaks) is passed over, and the rest are warmed."""
    log: list[tuple[str, str, str]] = []
    executors = {n: Warming(n, ok, log=log, breaks=n == "a") for n in "abc"}
    fleet = Fleet(dict(executors), dict.fromkeys(executors, "linux"))
    fleet.warm(["a", "b", "c"], lambda name: name != "c")
    wait_for(lambda: ("warm", "b", "warming") in log, "b to be warmed")
    fleet.close()
    assert [(what, host) for what, host, _ in log if what == "warm"] == [("warm", "a"), ("warm", "b")]
