"""Rolling groups (`steps:` with `on:` and `serial:`) end to end against three real sshd nodes (issue 23).

"Drain → upgrade → uncordon, then the next node": `kubectl` is a recording stand-in on this machine, and
`upgrade-node` one on each node; the tests assert which of them ran, in which order, and what the journal
and a resume make of a failure inside a batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sshd import SSHDNode

from runbooks import (
    Lab,
    Nodes,
    calls,
    ends,
    fold,
    identity_config,
    journal,
    local_stand_in,
    summary_rows,
    work_lab,
    write_ssh_home,
)

pytestmark = pytest.mark.ssh

GROUP = """\
  - id: pre
    title: Look at the cluster
    run: kubectl get nodes
  - id: upgrade
    title: Upgrade node by node
    on: nodes
    serial: 1
{extra}    steps:
      - id: drain
        title: Drain
        on: local
        run: kubectl drain {{{{ batch | map(attribute='name') | join(' ') }}}}
      - id: install
        title: Install the release
        run: upgrade-node {{{{ release }}}} {{{{ host.name }}}}
      - id: uncordon
        title: Uncordon
        on: local
        run: kubectl uncordon {{{{ batch[0].name }}}}
  - id: post
    title: Look again
    run: kubectl get nodes --after
"""


def rolling(nodes: list[SSHDNode], extra: str = "") -> str:
    hosts = ", ".join(f"{n.user}@{n.address}:{n.port}" for n in nodes)
    return (
        'runbook: 1\nname: roll\nversion: "1.0"\ntitle: Roll\n'
        "variables:\n  release: {type: string, default: v2}\n"
        f"targets:\n  nodes:\n    ssh:\n      hosts: [{hosts}]\n"
        f"steps:\n{GROUP.format(extra=extra)}"
    )


@pytest.fixture
def nodes(sshd_nodes: Nodes, home: Path) -> list[SSHDNode]:
    started = sshd_nodes(3)
    write_ssh_home(home, started, config=identity_config(started))
    return started


@pytest.fixture
def lab(tmp_path: Path, home: Path, nodes: list[SSHDNode]) -> Lab:
    lab = work_lab(tmp_path, home, nodes)
    local_stand_in(lab.bin_dir, "kubectl", lab.calls_log)
    return lab


def upgrade_on(nodes: list[SSHDNode], failing: SSHDNode | None = None) -> None:
    for node in nodes:
        node.stand_in("upgrade-node", exit_code=1 if node is failing else 0)


def kubectl(lab: Lab) -> list[str]:
    return [" ".join(str(a) for a in call["argv"][1:]) for call in lab.calls("kubectl")]


def test_a_failure_on_node_2_stops_the_roll_and_a_resume_continues_at_the_failed_step(
    lab: Lab, nodes: list[SSHDNode]
) -> None:
    one, two, three = nodes
    upgrade_on(nodes, failing=two)
    book = lab.write(rolling(nodes))
    done = lab.run_here(book, "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert kubectl(lab) == [
        "get nodes",
        f"drain {one.address}",
        f"uncordon {one.address}",
        f"drain {two.address}",
    ]
    assert calls(one, "upgrade-node") == [["upgrade-node", "v2", one.address]]
    assert calls(two, "upgrade-node") == [["upgrade-node", "v2", two.address]]
    assert calls(three, "upgrade-node") == []  # the later batch is untouched
    assert f"run failed: upgrade[{two.address}]/install@{two.address}" in done.stdout
    state = fold(journal(lab.state))
    assert state[(f"upgrade[{one.address}]/uncordon", "local")] == "ok"
    assert state[(f"upgrade[{two.address}]/install", two.address)] == "failed"
    assert not [key for key in state if three.address in key[0]]
    plan = lab.run_here(book, task="plan").stdout
    heading = (
        f"upgrade: Upgrade node by node (batch 3/3: {three.address})  [a group of 3 steps, rolls over nodes"
    )
    assert f"  2. {heading}, 1 at a time (3 batches)]" in plan

    upgrade_on(nodes)  # node 2 fixed
    resumed = lab.run_here(book, "--yes", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert kubectl(lab)[4:] == [
        f"uncordon {two.address}",
        f"drain {three.address}",
        f"uncordon {three.address}",
        "get nodes --after",
    ]  # not drained again: the resume continued inside node 2's batch, at the failed step
    assert len(calls(one, "upgrade-node")) == 1 and len(calls(two, "upgrade-node")) == 2
    assert calls(three, "upgrade-node") == [["upgrade-node", "v2", three.address]]
    assert ends(journal(lab.state))[(f"upgrade[{two.address}]/drain", "local")] == 1


def test_max_failed_hosts_in_a_group_rolls_on_without_the_failed_node(
    lab: Lab, nodes: list[SSHDNode]
) -> None:
    one, two, three = nodes
    upgrade_on(nodes, failing=two)
    done = lab.run_here(lab.write(rolling(nodes, "    max_failed_hosts: 1\n")), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr  # a failed host fails the run, even tolerated
    assert "within its max_failed_hosts=1" in done.stdout
    # node 2 is not uncordoned by a step that thought it was fine; node 3 rolls on
    assert kubectl(lab) == [
        "get nodes",
        f"drain {one.address}",
        f"uncordon {one.address}",
        f"drain {two.address}",
        f"drain {three.address}",
        f"uncordon {three.address}",
        "get nodes --after",
    ]
    assert calls(three, "upgrade-node") == [["upgrade-node", "v2", three.address]]
    rows = summary_rows(done.stdout)
    assert (f"upgrade[{two.address}]/uncordon", "local", "skipped") in rows


def test_more_failures_than_the_group_allows_stop_the_roll(lab: Lab, nodes: list[SSHDNode]) -> None:
    one, two, three = nodes
    for node in (two, three):
        node.stand_in("upgrade-node", exit_code=1)
    one.stand_in("upgrade-node")
    done = lab.run_here(lab.write(rolling(nodes, "    max_failed_hosts: 1\n")), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert kubectl(lab)[-1] == f"drain {three.address}"  # the second failure stopped it: nothing after


def test_the_result_of_a_step_on_several_hosts_is_said_per_host(lab: Lab, nodes: list[SSHDNode]) -> None:
    """Issue 23, bug 4: `result:` was rendered once, with the first host's name and output."""
    hosts = ", ".join(f"{n.user}@{n.address}:{n.port}" for n in nodes)
    text = (
        'runbook: 1\nname: ver\nversion: "1.0"\ntitle: Versions\n'
        f"targets:\n  nodes:\n    ssh:\n      hosts: [{hosts}]\n"
        "steps:\n  - id: ver\n    title: Read the version\n    on: nodes\n"
        "    run: echo v-{{ host.name }}\n"
        '    result: "{{ host.name }} runs {{ steps.ver.stdout | trim }}"\n'
    )
    book = lab.write(text)
    done = lab.run_here(book, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    for node in nodes:
        assert f"result on {node.address}: {node.address} runs v-{node.address}" in done.stdout
    ends = {r["host"]: r.get("result") for r in journal(lab.state) if r["type"] == "step-end"}
    assert ends == {n.address: f"{n.address} runs v-{n.address}" for n in nodes}  # journaled per host
    plan = lab.run_here(book, task="plan")
    assert f"result on {nodes[2].address}: {nodes[2].address} runs <steps.ver.stdout" in plan.stdout
    checklist = lab.run_here(book, task="checklist")
    assert f"on {nodes[1].address}: {nodes[1].address} runs" in checklist.stdout


def test_a_later_step_of_a_batch_reads_only_the_hosts_still_going_in_batch(
    lab: Lab, nodes: list[SSHDNode]
) -> None:
    one, two, three = nodes
    upgrade_on(nodes, failing=one)
    text = rolling(nodes, "    max_failed_hosts: 1\n").replace("serial: 1", "serial: 2")
    text = text.replace(
        "uncordon {{ batch[0].name }}", "uncordon {{ batch | map(attribute='name') | join(' ') }}"
    )
    done = lab.run_here(lab.write(text), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert kubectl(lab)[1:] == [
        f"drain {one.address} {two.address}",
        f"uncordon {two.address}",  # not the node whose upgrade failed
        f"drain {three.address}",
        f"uncordon {three.address}",
        "get nodes --after",
    ]
