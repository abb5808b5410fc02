"""Before the first step: connect every host, learn its platform, run the checks, find the programs.

Everything is checked and every problem collected before one is reported, so the operator fixes them
all in one go; and if anything fails, nothing has run anywhere (exit 3).

Connecting is mostly waiting on the hosts (their sshd's key exchange, session and shell), so `run` starts
it in the background as soon as the plan is known (`Connecting`) and collects it at the preflight phase:
the lock, the journal and the warnings are done meanwhile. Connecting and probing run nothing of the
runbook, and what they find is reported at the same phase, with the same exit code, as before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from engine.errors import PreflightFailed, RunbookError
from engine.executors import Executor, executor_for, sshlimits
from engine.fleet import CONNECT_AT_ONCE, Fleet
from engine.planning import HostPlan, Plan, PlannedStep
from engine.targets import LOCAL_HOST, Host
from engine.transports import SSHOptions, Transport

if TYPE_CHECKING:
    from engine.executors.rehearsal import Stage  # only a rehearsal imports its executor


def _local_hosts(plan: Plan) -> Iterable[Host]:
    yield LOCAL_HOST
    for target in plan.targets.values():
        yield from (h for h in target.hosts if h.transport is Transport.LOCAL and h != LOCAL_HOST)


class Connecting:
    """`connect` in a thread of its own, started early (`start`) or at the preflight phase (`fleet`).

    `close()` ends it however the run ends: the connections are closed now, or as soon as they are made if
    connecting is still under way, so a run that stops before its preflight (lock held, warnings declined)
    waits for no host that does not answer.
    """

    def __init__(
        self,
        plan: Plan,
        options: SSHOptions,
        stage: Stage | None = None,
        hosts: frozenset[str] | None = None,
    ) -> None:
        self._plan, self._options, self._stage, self._hosts = plan, options, stage, hosts
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: Fleet | BaseException | None = None
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._connect, name="connecting", daemon=True)
                self._thread.start()

    def fleet(self, say: Callable[[str], None]) -> Fleet:
        """The connected fleet, or the error connecting ended with (PreflightFailed: nothing has run)."""
        if remote := _remote(self._plan, self._hosts):
            say(f"connecting to {len(remote)} host(s)…")
        self.start()
        self._done.wait()
        if isinstance(self._result, BaseException):
            raise self._result
        assert self._result is not None
        return self._result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if isinstance(self._result, Fleet):
                self._result.close()

    def _connect(self) -> None:
        result: Fleet | BaseException
        try:
            result = connect(self._plan, self._options, self._stage, self._hosts)
        except BaseException as error:  # raised again in the thread that waits (`fleet`)
            result = error
        with self._lock:
            self._result = result
            if self._closed and isinstance(result, Fleet):
                result.close()
        self._done.set()


def wanted_hosts(plan: Plan, steps: Iterable[PlannedStep]) -> frozenset[str]:
    """The hosts a run has something to do on: every check's, and those of the chosen steps (`--from`,
    `--only`) that a `when` decided when the plan was made does not leave out. No other host is reached, so
    a host that is down but has nothing to do stops nothing."""
    names = {h.host.name for check in plan.checks for h in check.hosts}
    names |= {h.host.name for step in steps for h in step.hosts if not h.skip}
    return frozenset(names)


def _remote(plan: Plan, hosts: frozenset[str] | None) -> tuple[Host, ...]:
    return tuple(h for h in plan.remote_hosts() if hosts is None or h.name in hosts)


def connect(
    plan: Plan, options: SSHOptions, stage: Stage | None = None, hosts: frozenset[str] | None = None
) -> Fleet:
    """Executors for every host of the plan (of `hosts`, if given), each with its platform and the programs
    it lacks.

    SSH hosts are connected all at once (up to `CONNECT_AT_ONCE`) and asked both things in one command, so
    a host costs one round trip before the checks; all failures are reported at once. On a rehearsal's
    `stage` every host is a stand-in (`executor_for` picks it) and time is the stage's clock.
    """
    fleet = Fleet() if stage is None else Fleet(clock=stage.clock)
    needed = _needed_programs(plan)
    for host in _local_hosts(plan):
        executor = fleet.executors[host.name] = executor_for(host, options, stage)
        fleet.local.add(host.name)
        fleet.platforms[host.name] = plan.platform or executor.platform()
    remote = _remote(plan, hosts)

    def open_one(host: Host) -> tuple[Host, Executor | None, str, list[str]]:
        executor = executor_for(host, options, stage)
        try:
            executor.connect()
            platform, missing = executor.probe(needed.get(host.name, []))
            return host, executor, platform, missing
        except RunbookError as error:
            executor.close()
            return host, None, str(error), []

    with ThreadPoolExecutor(max_workers=max(1, min(CONNECT_AT_ONCE, len(remote)))) as pool:
        results = list(pool.map(open_one, remote))
    tolerated = _may_be_unreachable(plan)
    failures = [
        detail if detail.startswith(f"{host.name}: ") else f"{host.name}: {detail}"
        for host, executor, detail, _ in results
        if executor is None and host.name not in tolerated
    ]
    for host, opened, detail, _ in results:
        if opened is None and host.name in tolerated:
            why = detail.removeprefix(f"{host.name}: ")
            fleet.unreachable[host.name] = f"unreachable at preflight ({why}); its target may be unreachable"
    for host, connected, platform, missing in results:
        if connected is not None:
            fleet.executors[host.name] = connected
            fleet.platforms[host.name] = platform
            fleet.missing[host.name] = missing
    if failures:
        fleet.close()
        raise PreflightFailed("cannot reach every host; nothing has run:\n  " + "\n  ".join(failures))
    return fleet


def _may_be_unreachable(plan: Plan) -> set[str]:
    """The hosts whose every target says they may be unreachable (`may_be_unreachable: true`)."""
    hosts = [(h.name, t.may_be_unreachable) for t in plan.targets.values() for h in t.hosts]
    return {name for name, _ in hosts} - {name for name, tolerant in hosts if not tolerant}


def _needed_programs(plan: Plan) -> dict[str, list[str]]:
    """The programs the steps call, by host, in order of first use."""
    needed: dict[str, list[str]] = {}
    for step in plan.steps:
        for host_plan in step.hosts:
            wanted = needed.setdefault(host_plan.host.name, [])
            wanted += [p for p in step.programs if p not in wanted]
    return needed


def check(plan: Plan, fleet: Fleet, say: Callable[[str], None], started: bool = False) -> None:
    """The runbook's checks (each on its hosts at once), a command for every host and platform, and the
    programs each step calls. `started`: the run resumes one that started steps, so a check that holds only
    before the first start (`only_before_start`) is skipped, and says so."""
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=CONNECT_AT_ONCE) as pool:
        # every check on every host at once (they only look), reported in the runbook's order
        running = []
        for planned in plan.checks:
            if started and planned.only_before_start:
                say(f"check: {planned.title} — skipped: it holds only before the first step, and steps ran")
                continue
            say(f"check: {planned.title}")
            run = functools.partial(_run_check, planned.title, fleet=fleet, timeout=planned.timeout)
            for host_plan in planned.hosts:
                if (why := fleet.unreachable.get(host_plan.host.name)) is not None:
                    say(f"  {host_plan.host.name}: skipped, {why}")
                else:
                    running.append(pool.submit(run, host_plan))
        # the programs of hosts not asked with their platform (SSH hosts were, in the same round trip),
        # looked up while the checks run
        wanted = [(h, p) for h, p in _needed_programs(plan).items() if p and h in fleet.platforms]
        asked = {
            h: pool.submit(fleet.executors[h].missing_programs, p)
            for h, p in wanted
            if h not in fleet.missing
        }
        problems += [line for future in running for line in future.result()]
        for step in plan.steps:
            for host_plan in (h for h in step.hosts if h.host.name in fleet.platforms):  # the hosts reached
                if problem := _command_problem(host_plan, fleet.platforms[host_plan.host.name]):
                    problems.append(f"step {step.id} on {host_plan.host.name}: {problem}")
        for host, programs in wanted:
            lacking = asked[host].result() if host in asked else fleet.missing[host]
            problems += [f"{host}: program not found: {name}" for name in programs if name in lacking]
    if problems:
        raise PreflightFailed("preflight failed; nothing has run:\n  " + "\n  ".join(problems))


def _command_problem(host_plan: HostPlan, platform: str) -> str | None:
    """Why the step's command cannot start on this host: no variant for its platform, or (over SSH) a
    command bigger than the host takes (`sshlimits`). A step rendered at run time is measured then."""
    if host_plan.skip:
        return None
    variant = host_plan.variant(platform)
    if variant is None:
        return f"no command for platform {platform!r}"
    if host_plan.host.transport is not Transport.SSH or host_plan.deferred:
        return None
    return sshlimits.command_problem(variant.script, host_plan.env, platform == "linux")


def _run_check(title: str, host_plan: HostPlan, fleet: Fleet, timeout: float) -> list[str]:
    host = host_plan.host.name
    variant = host_plan.variant(fleet.platforms[host])
    if variant is None:
        return [f"check {title!r} on {host}: no command for platform {fleet.platforms[host]!r}"]
    result = fleet.executors[host].run(variant.script, cwd=host_plan.cwd, timeout=timeout)
    if result.ok:
        return []
    why = "timed out" if result.timed_out else f"exit {result.exit_code}"
    detail = result.tail("stderr", 3) or result.tail("stdout", 3)
    return [f"check failed on {host}: {title} ({why}){': ' + detail if detail else ''}"]
