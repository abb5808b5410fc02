"""The shipped scenarios: ha-rollback.yml rehearsed on a real RKE cluster file (a worker-only node restarts
only kubelet and kube-proxy), etcd-snapshot.yml with its own; both found beside their runbook by default."""

from __future__ import annotations

from pathlib import Path

from rehearsing import runbook, section

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = """\
nodes:
  - address: 127.0.0.77
    user: rancher
    role: [controlplane, etcd, worker]
  - address: 127.0.0.78
    user: rancher
    port: "2222"
    role: [controlplane, etcd, worker]
  - address: 127.0.0.79
    user: rancher
    role: [worker]
"""


def test_the_rollback_rehearses_on_an_rke_cluster_file(tmp_path: Path) -> None:
    (tmp_path / "rancher-cluster.yml").write_text(CLUSTER)
    done = runbook(
        tmp_path,
        "rehearse",
        str(ROOT / "runbooks" / "ha-rollback.yml"),
        "--var",
        "snapshot=pre-upgrade",
        "--var",
        "prior_version=v2.0.8",
        "--auto",
    )
    assert done.returncode == 0, done.stderr
    # the restore's approval (approvals: 1 by default) is said, never waited for: nothing is executed
    assert "a run waits here for 1 approval(s) (rehearsal: not asked, nothing is executed)" in done.stderr
    report = done.stdout
    assert "ha-rollback.rehearsal.yml (sha256 " in report  # the default scenario, beside the runbook
    restart = section(report, "3. restart-components: Restart the Kubernetes components on every node")
    worker = [line for line in restart.splitlines() if line.startswith("| 127.0.0.79 | run 1")]
    assert len(worker) == 1 and "docker restart kubelet kube-proxy ⏎" in worker[0], worker
    assert "stdout: kubelet | answers[3] (line 24)" in worker[0]
    controlplane = [line for line in restart.splitlines() if line.startswith("| 127.0.0.78 | run 1")]
    assert "docker restart kube-apiserver kubelet" in controlplane[0] and "answers[4]" in controlplane[0]
    assert "Version shown in the bottom-left corner → 'v2.0.8', answered by simulated (--confirm-manual)" in (
        report
    )
    assert "| simulated duration | 0:11:34 |" in report  # 95 s + 312 s + 45 s + 2 s + 4 min
    assert section(report, "Unscripted commands (succeeded with empty output)").count("- check @") == 2
    assert not (tmp_path / ".runbook" / "runs").exists()  # no real run was journaled


def test_the_snapshot_rehearses_with_its_scenario(tmp_path: Path) -> None:
    done = runbook(
        tmp_path, "rehearse", str(ROOT / "runbooks" / "etcd-snapshot.yml"), "--var", "name=drill", "--auto"
    )
    assert done.returncode == 0, done.stderr
    assert "INFO[0088] Finished saving/uploading snapshot on all etcd hosts" in done.stderr
    assert (
        "| save | local | ` ./rke_linux-amd64 etcd snapshot-save --name drill --config rancher-cluster.yml `"
        in (done.stdout)
    )
    assert "| simulated duration | 0:01:30 |" in done.stdout


def test_runbook_list_leaves_scenarios_out() -> None:
    done = runbook(ROOT, "list")
    assert done.returncode == 0
    assert "rehearsal" not in done.stdout and "(invalid)" not in done.stdout
