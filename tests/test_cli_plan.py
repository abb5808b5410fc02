"""Acceptance tests of `invoke plan`: the shipped rollback runbook, overrides, --save, and nothing executed.

Every test runs the real command line from the repository root: the shipped runbook's linux plan as a
process of its own (`invoke plan`), the others in this process (`runbooks.in_process`), as fast as a function.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbooks import in_process

ROOT = Path(__file__).resolve().parent.parent
RKE_DIR = "tests/data/rke"
ROLLBACK = [
    "runbooks/ha-rollback.yml",
    "--var",
    "snapshot=etcd-before-upgrade",
    "--var",
    "prior_version=v2.0.8",
]
NODES = ["10.0.0.11", "10.0.0.12", "node3.example.com"]
# as the plan shows them: user@address:port (the inventory's port, else its template's default(22))
NODES_SHOWN = ["ubuntu@10.0.0.11:2222", "ubuntu@10.0.0.12:22", "rancher@node3.example.com:22"]
RESTART = [
    "docker restart kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy",
    'docker ps | grep flannel | cut -f 1 -d " " | xargs -r docker restart',
    'docker ps | grep calico | cut -f 1 -d " " | xargs -r docker restart',
]


def plan(*args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    if not process:
        result = in_process(["plan", *args], ROOT, environ)
        assert "Traceback" not in result.stderr
        return result
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "plan", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=environ,
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    return result


def step_block(stdout: str, step: str) -> list[str]:
    """The lines of one step of the plan output, from its heading to the next blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if f". {step}: " in line)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return [line.strip() for line in lines[start:end]]


@pytest.fixture(scope="module")
def linux_plan() -> subprocess.CompletedProcess[str]:
    return plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--platform", "linux", process=True)


def test_rollback_plan_shows_every_command_for_linux(linux_plan: subprocess.CompletedProcess[str]) -> None:
    out = linux_plan.stdout
    assert linux_plan.returncode == 0, linux_plan.stderr
    assert "platform: linux" in out
    assert (
        "WARNING: Rolling back to a previous version of Rancher destroys any changes made to Rancher "
        "following the upgrade. Unrecoverable data loss may occur."
    ) in out
    assert step_block(out, "restore-snapshot") == [
        "1. restore-snapshot: Restore the etcd snapshot taken before the upgrade  [on this machine, timeout 30 min, "
        "needs 1 approval(s) by other operators (any operator), waits 1 h]",
        "confirm: This overwrites the cluster's etcd data with the snapshot. Type the snapshot name to go on. "
        "(type 'etcd-before-upgrade')",
        f"@ local  (cwd {RKE_DIR})",
        "[Linux] $ ./rke_linux-amd64 etcd snapshot-restore --name etcd-before-upgrade --config rancher-cluster.yml",
    ]
    assert "[Linux] $ ./rke_linux-amd64 up --config rancher-cluster.yml" in out
    assert "rke_darwin-amd64" not in out
    assert (
        "$ kubectl --kubeconfig=kube_config_rancher-cluster.yml set image deployment/cattle "
        "cattle-server=rancher/rancher:v2.0.8 -n cattle-system"
    ) in out
    assert "result: The rollback begins. Rancher Server may be unavailable for a few minutes." in out
    assert (
        "$ kubectl --kubeconfig=kube_config_rancher-cluster.yml -n cattle-system rollout status "
        "deployment/cattle --timeout=10m"
    ) in out
    assert "record: Version shown in the bottom-left corner — expected v2.0.8" in out
    assert "$ test -f rancher-cluster.yml\n" in out and "v[0-9]*) test -f rancher-cluster.rkestate || " in out
    assert "hosts of nodes:\n  10.0.0.11: ssh ubuntu@10.0.0.11:2222, key " in out


def test_rollback_plan_restarts_components_on_every_node_of_the_cluster_file(
    linux_plan: subprocess.CompletedProcess[str],
) -> None:
    expected = [
        "3. restart-components: Restart the Kubernetes components on every node  "
        "[on nodes (3 hosts), 10 at a time, timeout 10 min]"
    ]
    for node in NODES_SHOWN:
        expected += [f"@ {node}", f"$ {RESTART[0]}", RESTART[1], RESTART[2]]
    assert step_block(linux_plan.stdout, "restart-components") == expected


def test_rollback_plan_for_macos_uses_the_darwin_binary() -> None:
    result = plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--platform", "darwin")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "platform: darwin" in out
    assert (
        "[macOS] $ ./rke_darwin-amd64 etcd snapshot-restore --name etcd-before-upgrade "
        "--config rancher-cluster.yml"
    ) in out
    assert "[macOS] $ ./rke_darwin-amd64 up --config rancher-cluster.yml" in out
    assert "[macOS] $ test -x ./rke_darwin-amd64" in out
    assert "rke_linux-amd64" not in out
    assert all(f"@ {node}\n" in out for node in NODES_SHOWN)


def test_hosts_override_replaces_the_inventory() -> None:
    # the override wins: the inventory is not even read (rke_dir does not hold one)
    result = plan(
        *ROLLBACK,
        "--var",
        "rke_dir=tests/data/nowhere",
        "--hosts",
        "nodes=a,admin@b:2200",
        "--platform",
        "linux",
    )
    assert result.returncode == 0, result.stderr
    block = step_block(result.stdout, "restart-components")
    assert block[0].endswith("[on nodes (2 hosts), 10 at a time, timeout 10 min]")
    assert [line for line in block if line.startswith("@")] == ["@ a", "@ admin@b:2200"]


def test_target_local_runs_a_targets_steps_here() -> None:
    result = plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--target", "nodes=local", "--platform", "linux")
    assert result.returncode == 0, result.stderr
    assert [line for line in step_block(result.stdout, "restart-components") if line.startswith("@")] == [
        f"@ {node}" for node in NODES
    ]


def test_bad_overrides_are_usage_errors() -> None:
    result = plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--platform", "solaris")
    assert result.returncode == 2
    assert result.stderr == "error: --platform 'solaris': choose one of linux, darwin, windows\n"
    result = plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--hosts", "nodez=a")
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: --hosts nodez=…: unknown target 'nodez'; targets: local, nodes, workstation\n"
    )


def test_missing_inventory_is_reported_at_the_from_file_line() -> None:
    result = plan(*ROLLBACK, "--var", "rke_dir=tests/data/nowhere")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "runbooks/ha-rollback.yml:91:18: targets.nodes.ssh.from_file: cannot read the inventory "
        f"'tests/data/nowhere/rancher-cluster.yml' ({ROOT}/tests/data/nowhere/rancher-cluster.yml): "
        "cannot read: No such file or directory",
        "1 problem found",
    ]


def test_plan_executes_nothing_and_saves_a_checksummed_plan(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    saved = tmp_path / "plan.json"
    result = plan(
        "tests/data/plan-demo.yml", "--var", f"marker={marker}", "--save", str(saved), "--platform", "linux"
    )
    assert result.returncode == 0, result.stderr
    assert f"$ touch {marker}" in result.stdout
    assert not marker.exists()
    data = json.loads(saved.read_text(encoding="utf-8"))
    digest = data.pop("sha256")
    assert (data.pop("format"), data.pop("format_version")) == ("runbook-plan", 1)  # the frame, not reviewed
    content = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert digest == hashlib.sha256(content).hexdigest()
    assert result.stdout.endswith(f"\nplan saved to {saved} (sha256 {digest})\n")
    source = (ROOT / "tests/data/plan-demo.yml").read_bytes()
    assert data["runbook"] == {
        "name": "plan-demo",
        "version": "2.1",
        "title": "Plan demo",
        "sha256": hashlib.sha256(source).hexdigest(),
    }
    assert data["values"] == {"marker": str(marker), "token": "********"}
    touch = data["steps"][0]
    assert touch["hosts"] == [
        {
            "host": "local",
            "reach": "this machine",
            "local": True,
            "cwd": None,
            "env": {},
            "skip": None,
            "deferred": False,
            "commands": {"*": f"touch {marker}"},
            "secret_env": [],
            "secret_vars": {},
        }
    ]
    assert (touch["timeout"], touch["confirm"]) == (30.0, "Run step 'touch' (Create the marker)?")
    remote = data["steps"][1]["hosts"]
    assert [h["host"] for h in remote] == ["web1", "deploy@web2:2200"]
    assert remote[1]["commands"] == {"linux": "uname -a && echo web2", "darwin": "sw_vers"}
    assert "s3cr3t-token-value" not in saved.read_text(encoding="utf-8") + result.stdout


def test_plan_format_json_prints_the_document_save_writes(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    args = ("tests/data/plan-demo.yml", "--var", "marker=/nonexistent/m", "--platform", "linux")
    result = plan(*args, "--format", "json", "--save", str(saved))
    assert result.returncode == 0, result.stderr
    assert result.stdout == saved.read_text(encoding="utf-8")  # the JSON alone on standard output
    assert result.stderr.startswith(f"plan saved to {saved} (sha256 ")
    alone = plan(*args, "--format", "json")
    assert (alone.stdout, alone.stderr) == (result.stdout, "")
    assert json.loads(alone.stdout)["format"] == "runbook-plan"
    assert "s3cr3t-token-value" not in alone.stdout
    wrong = plan(*args, "--format", "yaml")
    assert (wrong.returncode, wrong.stderr) == (2, "error: --format 'yaml': choose one of text, json\n")


def test_a_one_person_team_sets_approvals_to_0_and_the_plan_says_so() -> None:
    done = plan(*ROLLBACK, "--var", f"rke_dir={RKE_DIR}", "--var", "approvals=0", "--platform", "linux")
    assert done.returncode == 0, done.stderr
    head = step_block(done.stdout, "restore-snapshot")[0]
    assert head.endswith(
        "[on this machine, timeout 30 min, no approval required (approvals: 0, set knowingly)]"
    )
