"""engine/preflight.py in process: checks, platforms and programs against fake executors, every problem at once.

`preflight.connect` against real sshd nodes (unreachable hosts, unknown host keys) is proven end to end in
test_run_ssh.py; here the decisions: what is checked where, and what is reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_running import HEAD, FakeExecutor, Reply

from engine import preflight, targets, variables
from engine.errors import PreflightFailed
from engine.executors import LocalExecutor
from engine.planner import build_plan
from engine.planning import Plan
from engine.preflight import Fleet
from engine.transports import SSHOptions
from engine.validation import validate

NODES = "targets:\n  nodes:\n    ssh:\n      hosts: [a, b]\n"


def plan_of(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "book.yml"
    path.write_text(HEAD + text)
    runbook = validate(path, "book.yml").runbook
    values = variables.resolve(runbook, {}, environ={})
    resolved = targets.resolve(runbook, {**values.values, "platform": "linux"})
    return build_plan(runbook, values, "linux", resolved)


def reply(script: str, attempt: int) -> Reply:
    if script.startswith("for p in"):  # the program probe: kubectl is missing everywhere
        return Reply(stdout="kubectl\n" if "kubectl" in script else "")
    if "docker info" in script:
        return Reply(code=1, stderr="Cannot connect to the Docker daemon\n")
    return Reply()


def fleet_of(platforms: dict[str, str]) -> Fleet:
    return Fleet({name: FakeExecutor(name, reply) for name in platforms}, dict(platforms))


def test_every_problem_of_every_host_is_reported_at_once(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        NODES
        + "checks:\n  - title: Docker answers\n    on: nodes\n    run: docker info\n"
        + "steps:\n"
        + "  - id: deploy\n    title: Deploy\n    on: nodes\n    requires: [kubectl]\n    run: {linux: apply}\n",
    )
    said: list[str] = []
    with pytest.raises(PreflightFailed) as error:
        preflight.check(plan, fleet_of({"local": "linux", "a": "linux", "b": "darwin"}), said.append)
    assert str(error.value).splitlines() == [
        "preflight failed; nothing has run:",
        "  check failed on a: Docker answers (exit 1): Cannot connect to the Docker daemon",
        "  check failed on b: Docker answers (exit 1): Cannot connect to the Docker daemon",
        "  step deploy on b: no command for platform 'darwin'",
        "  a: program not found: kubectl",
        "  b: program not found: kubectl",
    ]
    assert said == ["check: Docker answers"]


def test_a_clean_preflight_runs_the_checks_with_their_cwd_and_timeout(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        "checks:\n  - title: Here\n    cwd: /srv\n    timeout: 5s\n    run: test -d .\n"
        + "steps:\n  - id: a\n    title: A\n    requires: [jq]\n    run: echo a\n",
    )
    fleet = fleet_of({"local": "linux"})
    preflight.check(plan, fleet, lambda text: None)
    executor = fleet.executors["local"]
    assert isinstance(executor, FakeExecutor)
    [check, probe] = executor.calls
    assert (check.script.strip(), check.cwd) == ("test -d .", "/srv")
    assert probe.script.startswith("for p in") and "jq" in probe.script


def test_connect_gives_local_hosts_a_local_executor_without_connecting(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "steps:\n  - id: a\n    title: A\n    run: echo a\n")
    said: list[str] = []
    fleet = preflight.Connecting(plan, SSHOptions()).fleet(said.append)
    try:
        assert list(fleet.executors) == ["local"] and isinstance(fleet.executors["local"], LocalExecutor)
        assert fleet.platforms == {"local": "linux"} and said == []  # no "connecting to" for this machine
        assert fleet.local == {"local"}  # never released: nothing to close
    finally:
        fleet.close()
