"""Before the first step: connect every host, learn its platform, run the checks, find the programs.

Everything is checked and every problem collected before one is reported, so the operator fixes them
all in one go; and if anything fails, nothing has run anywhere (exit 3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.errors import PreflightFailed, RunbookError
from engine.executors import Executor, SSHOptions, Transport, executor_for
from engine.planning import HostPlan, Plan
from engine.targets import LOCAL_HOST, Host

_CONNECT_WORKERS = 16


@dataclass
class Fleet:
    """One executor per host for the whole run (one SSH connection each), and each host's platform."""

    executors: dict[str, Executor] = field(default_factory=dict)
    platforms: dict[str, str] = field(default_factory=dict)

    def executor(self, host: Host) -> Executor:
        return self.executors[host.name]

    def kill_all(self) -> None:
        with ThreadPoolExecutor(max_workers=_CONNECT_WORKERS) as pool:
            list(pool.map(lambda e: e.kill_all(), self.executors.values()))

    def close(self) -> None:
        for executor in self.executors.values():
            executor.close()


def _local_hosts(plan: Plan) -> Iterable[Host]:
    yield LOCAL_HOST
    for target in plan.targets.values():
        yield from (h for h in target.hosts if h.transport is Transport.LOCAL and h != LOCAL_HOST)


def connect(plan: Plan, options: SSHOptions, say: Callable[[str], None]) -> Fleet:
    """Executors for every host of the plan, SSH hosts connected in parallel; all failures reported at once."""
    fleet = Fleet()
    for host in _local_hosts(plan):
        fleet.executors[host.name] = executor_for(host, options)
        fleet.platforms[host.name] = plan.platform or fleet.executors[host.name].platform()
    remote = plan.remote_hosts()
    if not remote:
        return fleet
    say(f"connecting to {len(remote)} host(s)…")

    def open_one(host: Host) -> tuple[Host, Executor | None, str]:
        executor = executor_for(host, options)
        try:
            executor.connect()
            return host, executor, executor.platform()
        except RunbookError as error:
            executor.close()
            return host, None, str(error)

    with ThreadPoolExecutor(max_workers=min(_CONNECT_WORKERS, len(remote))) as pool:
        results = list(pool.map(open_one, remote))
    failures = [
        detail if detail.startswith(f"{host.name}: ") else f"{host.name}: {detail}"
        for host, executor, detail in results
        if executor is None
    ]
    for host, executor, platform in results:
        if executor is not None:
            fleet.executors[host.name] = executor
            fleet.platforms[host.name] = platform
    if failures:
        fleet.close()
        raise PreflightFailed("cannot reach every host; nothing has run:\n  " + "\n  ".join(failures))
    return fleet


def check(plan: Plan, fleet: Fleet, say: Callable[[str], None]) -> None:
    """The runbook's checks, a command for every host and platform, and the programs each step calls."""
    problems: list[str] = []
    for planned in plan.checks:
        say(f"check: {planned.title}")
        for host_plan in planned.hosts:
            problems += _run_check(planned.title, host_plan, fleet, planned.timeout)
    needed: dict[str, list[str]] = {}
    for step in plan.steps:
        for host_plan in step.hosts:
            platform = fleet.platforms[host_plan.host.name]
            if host_plan.variant(platform) is None and not host_plan.skip:
                problems.append(
                    f"step {step.id} on {host_plan.host.name}: no command for platform {platform!r}"
                )
            wanted = needed.setdefault(host_plan.host.name, [])
            wanted += [p for p in step.programs if p not in wanted]
    problems += _missing_programs(needed, fleet)
    if problems:
        raise PreflightFailed("preflight failed; nothing has run:\n  " + "\n  ".join(problems))


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


def _missing_programs(needed: dict[str, list[str]], fleet: Fleet) -> list[str]:
    def probe(item: tuple[str, list[str]]) -> list[str]:
        host, programs = item
        missing = fleet.executors[host].missing_programs(programs)
        return [f"{host}: program not found: {name}" for name in missing]

    with ThreadPoolExecutor(max_workers=_CONNECT_WORKERS) as pool:
        return [line for lines in pool.map(probe, [(h, p) for h, p in needed.items() if p]) for line in lines]
