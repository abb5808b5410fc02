"""`rules:` over the values and over the targets' hosts and inventories, checked by `plan` before anything runs.

The rollback refuses at plan time the cluster files rke itself refuses (rke's `cluster/validation.go`,
`validateHostsOptions`: a node without `user`, without `role`, or with a role rke does not know), naming
the node; every shape rke accepts (tests/data/rke/) still plans.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbooks import fill_cluster, in_process

ROOT = Path(__file__).resolve().parent.parent
RKE_DATA = ROOT / "tests" / "data" / "rke"
VALUES = {f"ADDR{i}": f"10.0.0.1{i}" for i in range(3)} | {f"PORT{i}": str(2201 + i) for i in range(3)}
VALUES |= {"USER": "rancher", "KEY": "/keys/k", "BASTION": "10.0.0.9", "BASTION_PORT": "22"}
VALUES |= {"BASTION_KEY": "/keys/b", "CERT_PATH": "/keys/k-cert.pub", "CERT": "ssh-ed25519-cert-v01 AAAA"}
VALUES |= {"INLINE_KEY": "      -----BEGIN OPENSSH PRIVATE KEY-----\n      -----END OPENSSH PRIVATE KEY-----"}
NODE = "  - address: {address}\n    port: 22\n{extra}"
RULE = {
    "rke refuses a node without a user": 0,
    "rke refuses a node without a role (etcd, controlplane or worker)": 1,
    "rke refuses a role it does not know (it knows etcd, controlplane and worker)": 2,
}
GOOD = NODE.format(address="10.0.0.11", extra="    user: rancher\n    role: [controlplane, etcd, worker]\n")


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}


def plan_rollback(rke_dir: Path, *extra: str) -> tuple[int, str, str]:
    args = [
        "plan",
        str(ROOT / "runbooks/ha-rollback.yml"),
        "--var",
        "snapshot=s1",
        "--var",
        "prior_version=v2.0.8",
    ]
    result = in_process([*args, "--var", f"rke_dir={rke_dir}", *extra], ROOT, environ())
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("node", "said"),
    [
        ("    role: [worker]\n", "rke refuses a node without a user: 10.0.0.12"),
        ('    user: ""\n    role: [worker]\n', "rke refuses a node without a user: 10.0.0.12"),
        (
            "    user: rancher\n",
            "rke refuses a node without a role (etcd, controlplane or worker): 10.0.0.12",
        ),
        (
            "    user: rancher\n    role: []\n",
            "rke refuses a node without a role (etcd, controlplane or worker): 10.0.0.12",
        ),
        (
            "    user: rancher\n    role: [controlplan, etcd]\n",
            "rke refuses a role it does not know (it knows etcd, controlplane and worker): 10.0.0.12 (controlplan)",
        ),
    ],
)
def test_the_rollback_refuses_at_plan_time_what_rke_refuses(tmp_path: Path, node: str, said: str) -> None:
    text = "nodes:\n" + GOOD + NODE.format(address="10.0.0.12", extra=node)
    (tmp_path / "rancher-cluster.yml").write_text(text, encoding="utf-8")
    code, out, err = plan_rollback(tmp_path)
    assert code == 2, out + err
    assert f"rules[{RULE[said.split(':')[0]]}].assert: rancher-cluster.yml: {said}\n" in " ".join(
        err.split(" ")
    )
    assert "ha-rollback.yml:" in err and ": rules[" in err  # at the rule's line
    assert "docker restart" not in out  # no plan was printed


def test_every_problem_of_the_cluster_file_at_once(tmp_path: Path) -> None:
    nodes = [
        NODE.format(address="10.0.0.12", extra="    role: [worker]\n"),
        NODE.format(address="10.0.0.13", extra="    user: u\n"),
    ]
    (tmp_path / "rancher-cluster.yml").write_text("nodes:\n" + GOOD + "".join(nodes), encoding="utf-8")
    code, _, err = plan_rollback(tmp_path)
    assert code == 2
    assert (
        "without a user: 10.0.0.12" in err
        and "without a role (etcd, controlplane or worker): 10.0.0.13" in err
    )


@pytest.mark.parametrize("shape", sorted(p.name for p in RKE_DATA.glob("*.yml")))
def test_every_cluster_file_rke_accepts_still_plans(tmp_path: Path, shape: str) -> None:
    (tmp_path / "rancher-cluster.yml").write_text(fill_cluster(shape, VALUES), encoding="utf-8")
    code, out, err = plan_rollback(tmp_path)
    assert code == 0, err
    assert "restart-components" in out


def test_hosts_given_instead_of_the_cluster_file_are_not_judged_by_it(tmp_path: Path) -> None:
    (tmp_path / "rancher-cluster.yml").write_text(
        "nodes:\n" + NODE.format(address="a", extra=""), encoding="utf-8"
    )
    code, out, err = plan_rollback(tmp_path, "--hosts", "nodes=deploy@10.0.0.20")
    assert code == 0, err
    assert "deploy@10.0.0.20" in out


SUBSET = """\
runbook: 1
name: restart
version: "1"
title: Restart some nodes
variables:
  nodes: {{type: array, items: {{type: string}}, default: {nodes}}}
rules:
  - assert: nodes | reject('in', targets.fleet.hosts | map(attribute='name')) | list | length == 0
    message: >-
      not in {{{{ targets.fleet.inventory.source }}}}:
      {{{{ nodes | reject('in', targets.fleet.hosts | map(attribute='name')) | join(', ') }}}}
targets:
  fleet:
    ssh: {{from_file: fleet.yml, each: hosts, host: "{{{{ item.address }}}}"}}
steps:
  - id: restart
    title: Restart
    on: fleet
    when: host.name in nodes
    run: systemctl restart app
"""


@pytest.mark.parametrize(("nodes", "refused"), [("[web1, web3]", ""), ("[web1, wbe2, web9]", "wbe2, web9")])
def test_a_runbook_can_require_its_nodes_to_be_inventory_hosts(
    tmp_path: Path, nodes: str, refused: str
) -> None:
    (tmp_path / "fleet.yml").write_text(
        "source: the fleet file\nhosts: [{address: web1}, {address: web2}, {address: web3}]\n",
        encoding="utf-8",
    )
    (tmp_path / "restart.yml").write_text(SUBSET.format(nodes=nodes), encoding="utf-8")
    checked = in_process(["validate", "restart.yml"], tmp_path, environ())
    assert checked.returncode == 0, checked.stderr  # `targets` is a name rules know
    result = in_process(["plan", "restart.yml"], tmp_path, environ())
    if refused:
        assert result.returncode == 2
        assert f"restart.yml:8:13: rules[0].assert: not in the fleet file: {refused}" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_only_a_rule_reads_targets(tmp_path: Path) -> None:
    text = SUBSET.format(nodes="[web1]").replace("run: systemctl restart app", "run: echo {{ targets }}")
    (tmp_path / "restart.yml").write_text(text, encoding="utf-8")
    result = in_process(["validate", "restart.yml"], tmp_path, environ())
    assert result.returncode == 2
    assert "undefined name 'targets'" in result.stderr
