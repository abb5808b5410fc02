"""Targets → hosts: inline lists, the RKE cluster file as an inventory, and the command-line overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import targets
from engine.errors import InvalidRunbook, UsageError
from engine.executors import Transport
from engine.model import Runbook
from engine.targets import Host, parse_host, parse_overrides
from engine.validation import validate

ROOT = Path(__file__).resolve().parent.parent
ROLLBACK = "runbooks/ha-rollback.yml"


@pytest.fixture(scope="module")
def rollback() -> Runbook:
    return validate(ROOT / ROLLBACK, ROLLBACK).runbook


def context(rke_dir: str | Path, **values: Any) -> dict[str, Any]:
    return {"rke_dir": str(rke_dir), "cluster_config": "rancher-cluster.yml", "platform": "linux", **values}


def problems(error: pytest.ExceptionInfo[InvalidRunbook]) -> list[str]:
    return [str(p) for p in error.value.problems]


def test_the_rke_cluster_file_gives_every_node(rollback: Runbook, home: Path) -> None:
    resolved = targets.resolve(rollback, context(ROOT / "tests/data/rke"))
    nodes = resolved["nodes"]
    assert (nodes.local, nodes.concurrency) == (False, 10)
    assert nodes.hosts == (
        Host("10.0.0.11", "10.0.0.11", "ubuntu", 2222, None),
        Host("10.0.0.12", "10.0.0.12", "ubuntu", 22, str(home / ".ssh/rke_node2")),  # `~` is expanded
        Host("node3.example.com", "node3.example.com", "rancher", 22, None),  # default(omit): no key file
    )
    assert resolved["workstation"].hosts == (targets.LOCAL_HOST,)
    assert resolved["local"].hosts == (targets.LOCAL_HOST,)


def test_hosts_override_replaces_the_inventory_without_reading_it(rollback: Runbook) -> None:
    resolved = targets.resolve(rollback, context("/nonexistent"), hosts={"nodes": "a, admin@b:2200,"})
    assert resolved["nodes"].hosts == (Host("a", "a"), Host("b", "b", "admin", 2200))


def test_target_local_keeps_the_hosts_but_runs_them_here(rollback: Runbook) -> None:
    resolved = targets.resolve(rollback, context(ROOT / "tests/data/rke"), run_locally={"nodes": "local"})
    nodes = resolved["nodes"]
    assert nodes.local is True
    assert [h.name for h in nodes.hosts] == ["10.0.0.11", "10.0.0.12", "node3.example.com"]
    assert all(h.transport is Transport.LOCAL for h in nodes.hosts)


def test_overrides_of_unknown_targets_or_places_are_usage_errors(rollback: Runbook) -> None:
    with pytest.raises(
        UsageError,
        match=r"^--hosts node=…: unknown target 'node'; targets: local, nodes, "
        r"workstation$",
    ):
        targets.resolve(rollback, context("."), hosts={"node": "a"})
    with pytest.raises(UsageError, match=r"^--target nodes=elsewhere: only 'local' is supported$"):
        targets.resolve(rollback, context("."), run_locally={"nodes": "elsewhere"})


def test_a_missing_inventory_is_reported_at_the_from_file_line(rollback: Runbook, tmp_path: Path) -> None:
    with pytest.raises(InvalidRunbook) as error:
        targets.resolve(rollback, context(tmp_path))
    assert problems(error) == [
        f"{ROLLBACK}:59:18: targets.nodes.ssh.from_file: cannot read the inventory "
        f"'{tmp_path}/rancher-cluster.yml': cannot read: No such file or directory"
    ]


@pytest.mark.parametrize(
    ("inventory", "expected"),
    [
        ("nodes: {}\n", "59:18: targets.nodes.ssh.from_file: '{path}' has no list at 'nodes'"),
        ("nodes: []\n", "59:18: targets.nodes.ssh.from_file: '{path}' has no list at 'nodes'"),
        (
            "nodes:\n  - address: a\n    user: u\n  - user: u\n",
            "61:13: targets.nodes.ssh.host: {path}: entry 1 of 'nodes': "
            "undefined: 'dict object' has no attribute 'address'",
        ),
        (
            "nodes:\n  - address: ''\n    user: u\n",
            "61:13: targets.nodes.ssh.host: {path}: entry 0 of 'nodes' has no host",
        ),
        (
            "nodes:\n  - address: a\n    user: u\n    port: ssh\n",
            "63:13: targets.nodes.ssh.port: {path}: entry 0: port 'ssh' is not a number",
        ),
    ],
)
def test_inventory_problems_name_the_entry(
    rollback: Runbook, tmp_path: Path, inventory: str, expected: str
) -> None:
    path = tmp_path / "rancher-cluster.yml"
    path.write_text(inventory, encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        targets.resolve(rollback, context(tmp_path))
    assert problems(error) == [f"{ROLLBACK}:" + expected.format(path=path)]


def test_a_malformed_inventory_is_reported_in_its_own_file(rollback: Runbook, tmp_path: Path) -> None:
    path = tmp_path / "rancher-cluster.yml"
    path.write_text("nodes:\n  - address: a\n  - address: a\n    address: b\n", encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        targets.resolve(rollback, context(tmp_path))
    assert problems(error) == [
        f"{path}:4:5: nodes[1].address: duplicate key 'address' (first defined at line 3)"
    ]


@pytest.mark.parametrize(
    ("spec", "host"),
    [
        ("web1", Host("web1", "web1")),
        ("deploy@web2", Host("web2", "web2", "deploy")),
        ("deploy@web2:2200", Host("web2", "web2", "deploy", 2200)),
        (" 10.0.0.1:22 ", Host("10.0.0.1", "10.0.0.1", None, 22)),
    ],
)
def test_parse_host(spec: str, host: Host) -> None:
    assert parse_host(spec) == host


@pytest.mark.parametrize("spec", ["", "a b", "u@", "a:port", "a@b@c"])
def test_parse_host_refuses_what_is_not_a_host(spec: str) -> None:
    with pytest.raises(UsageError, match="is not a host: expected name, user@name or user@name:port"):
        parse_host(spec)


def test_parse_overrides() -> None:
    assert parse_overrides(["nodes=a,b", "web=local"], "--hosts") == {"nodes": "a,b", "web": "local"}
    for bad in ("nodes", "=a", "nodes="):
        with pytest.raises(UsageError, match=f"^--hosts '{bad}': expected TARGET=VALUE$"):
            parse_overrides([bad], "--hosts")


def test_host_context_for_templates() -> None:
    assert Host("web2", "10.1.1.2", "deploy", 2200).context() == {
        "name": "web2",
        "address": "10.1.1.2",
        "user": "deploy",
        "port": 2200,
    }
