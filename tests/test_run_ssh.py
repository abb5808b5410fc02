"""`runbook run` end to end against real sshd nodes (tests/sshd.py): the acceptance tests of issue 3.

Every test runs the command line in a temporary directory (in this process, `Lab.run_here`; the main job
and Ctrl-C as a process of its own), with an empty HOME whose
~/.ssh/known_hosts lists the nodes, and asserts the exit code and what the recording stand-ins saw: `docker`
on the nodes, `rke_linux-amd64` and `kubectl` on this machine (tests/runbooks.py builds that lab).
"""

from __future__ import annotations

import secrets
import signal
import subprocess
from pathlib import Path

import pytest
from sshd import SSHDCluster, SSHDNode, free_port, generate_key

from engine.executors import nodefiles
from runbooks import (
    CALICO_ID,
    COMPONENTS,
    DOCKER_PS,
    FLANNEL_ID,
    HA_ROLLBACK,
    Lab,
    Nodes,
    calls,
    cluster_yaml,
    docker_nodes,
    docker_on,
    journal,
    nodes_runbook,
    output_lines,
    processes_matching,
    summary_rows,
    wait_for,
    work_lab,
    write_rollback,
    write_runbook,
    write_ssh_home,
)

pytestmark = pytest.mark.ssh


@pytest.fixture
def nodes(sshd_nodes: Nodes, home: Path) -> list[SSHDNode]:
    """Three nodes, each with a recording `docker`, trusted through ~/.ssh/known_hosts."""
    return docker_nodes(sshd_nodes, home)


@pytest.fixture
def lab(tmp_path: Path, home: Path, nodes: list[SSHDNode]) -> Lab:
    return work_lab(tmp_path, home, nodes)


@pytest.fixture
def rollback(lab: Lab, nodes: list[SSHDNode]) -> None:
    """What ha-rollback needs in the lab: the RKE directory, whose cluster file lists the nodes, and stand-ins."""
    write_rollback(lab, cluster_yaml(nodes))


def ha_rollback(
    lab: Lab, *flags: str, runbook: Path = HA_ROLLBACK, process: bool = False
) -> tuple[int, str, str]:
    """The rollback to its end: in this process, or (`process`) as a process of its own."""
    run = lab.run if process else lab.run_here
    done = run(runbook, *lab.rollback_vars(), "--yes", "--confirm-manual", *flags)
    return done.returncode, done.stdout, done.stderr


def call_times(calls: list[dict[str, object]]) -> list[float]:
    return [float(str(call["time"])) for call in calls]


# -- the rollback --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("rollback")
def test_ha_rollback_on_three_nodes(lab: Lab, nodes: list[SSHDNode]) -> None:
    code, out, err = ha_rollback(lab, process=True)
    assert code == 0, out + err
    local = lab.calls()
    assert [c["argv"] for c in local] == [
        [
            "rke_linux-amd64",
            "etcd",
            "snapshot-restore",
            "--name",
            "pre-upgrade-2026-11-26",
            "--config",
            "rancher-cluster.yml",
        ],
        ["rke_linux-amd64", "up", "--config", "rancher-cluster.yml"],
        [
            "kubectl",
            "--kubeconfig=kube_config_rancher-cluster.yml",
            "set",
            "image",
            "deployment/cattle",
            "cattle-server=rancher/rancher:v2.0.8",
            "-n",
            "cattle-system",
        ],
        [
            "kubectl",
            "--kubeconfig=kube_config_rancher-cluster.yml",
            "-n",
            "cattle-system",
            "rollout",
            "status",
            "deployment/cattle",
            "--timeout=10m",
        ],
    ]
    assert all(c["cwd"] == str(lab.rke_dir) for c in local)
    times = call_times(local)
    assert times == sorted(times)
    rke_up, set_image = times[1], times[2]
    for node in nodes:
        restarts = [argv[1:] for argv in calls(node, "docker") if argv[1] == "restart"]
        assert restarts == [["restart", *COMPONENTS], ["restart", FLANNEL_ID], ["restart", CALICO_ID]], (
            node.address
        )
        assert all(rke_up < t < set_image for t in call_times(node.calls("docker"))), node.address
        assert f"{node.address} | {DOCKER_PS.splitlines()[0]}" in out  # streamed with a host prefix
    assert "answered by --confirm-manual: v2.0.8" in out
    [manual] = [r for r in journal(lab.state) if r["type"] == "manual"]
    assert manual["by"] == "--confirm-manual" and manual["answer"] == "v2.0.8" and manual["ok"] is True
    assert summary_rows(out) == [
        ("restore-snapshot", "local", "ok"),
        ("rke-up", "local", "ok"),
        *[("restart-components", node.address, "ok") for node in nodes],
        ("set-image", "local", "ok"),
        ("wait-rollout", "local", "ok"),
        ("check-version", "operator", "ok"),
    ]


@pytest.mark.usefixtures("rollback")
def test_one_failing_node_stops_the_run(lab: Lab, nodes: list[SSHDNode]) -> None:
    bad = nodes[1]
    docker_on(nodes, failing=bad.address)
    code, out, err = ha_rollback(lab)
    assert code == 1, out + err
    assert ("restart-components", bad.address, "failed") in summary_rows(out)
    assert f"run failed: restart-components@{bad.address}" in out
    assert lab.calls("kubectl") == []
    assert [r[0] for r in summary_rows(out)][-1] == "restart-components"  # nothing after it ran
    assert calls(bad, "docker") == [
        ["docker", "restart", *COMPONENTS]
    ]  # `sh -e`: the first failing line ends it
    for node in nodes:
        if node is not bad:  # the other hosts finished their part before the step failed
            assert [a[1:] for a in calls(node, "docker") if a[1] == "restart"][-1] == ["restart", CALICO_ID]


@pytest.mark.usefixtures("rollback")
def test_max_failed_hosts_lets_the_run_go_on(lab: Lab, nodes: list[SSHDNode], tmp_path: Path) -> None:
    text = HA_ROLLBACK.read_text()
    anchor = "    on: nodes\n    timeout: 10m\n"
    assert text.count(anchor) == 1
    text = text.replace(anchor, "    on: nodes\n    max_failed_hosts: 1\n    timeout: 10m\n")
    tolerant = write_runbook(tmp_path, text, "ha-rollback.yml")
    bad = nodes[2]
    docker_on(nodes, failing=bad.address)
    code, out, err = ha_rollback(lab, runbook=tolerant)
    assert code == 1, out + err  # a failed host fails the run, even when tolerated
    assert f"within max_failed_hosts=1: going on without {bad.address}" in out
    assert [c["argv"][0] for c in lab.calls()] == ["rke_linux-amd64", "rke_linux-amd64", "kubectl", "kubectl"]
    rows = summary_rows(out)
    assert ("restart-components", bad.address, "failed") in rows and (
        "check-version",
        "operator",
        "ok",
    ) in rows
    assert f"run failed: restart-components@{bad.address}" in out


# -- preflight: nothing runs anywhere ------------------------------------------------------------------


def assert_nothing_ran(lab: Lab) -> None:
    assert lab.calls() == []
    assert all(node.calls() == [] for node in lab.nodes)
    records = journal(lab.state)
    assert not [r for r in records if r["type"] == "step-start"]
    assert records[-1]["type"] == "run-end" and records[-1]["status"] == "preflight-failed"


def test_unreachable_node_fails_preflight(lab: Lab, nodes: list[SSHDNode]) -> None:
    gone = nodes[2]
    closed = free_port(gone.address)  # nothing listens there: a node that is down
    write_rollback(lab, cluster_yaml(nodes, ports={gone.address: closed}))
    code, out, err = ha_rollback(lab)
    assert code == 3, out + err
    assert f"{gone.address}: connection refused by {gone.address}:{closed}" in err
    assert_nothing_ran(lab)


@pytest.mark.parametrize("case", ["changed", "changed-trusting-new", "unknown"])
@pytest.mark.usefixtures("rollback")
def test_untrusted_host_key_fails_preflight(
    case: str, lab: Lab, nodes: list[SSHDNode], tmp_path: Path
) -> None:
    odd = nodes[1]
    if case == "unknown":
        write_ssh_home(lab.home, [n for n in nodes if n is not odd])
    else:
        write_ssh_home(lab.home, nodes, replace={odd.address: generate_key(tmp_path / "impostor")})
    flags = ["--trust-new-host-keys"] if case == "changed-trusting-new" else []
    code, out, err = ha_rollback(lab, *flags)
    assert code == 3, out + err
    assert ("has CHANGED" if case.startswith("changed") else "unknown host key") in err and odd.address in err
    assert_nothing_ran(lab)


# -- commands on a node: output, stdin, timeout, Ctrl-C ------------------------------------------------


def node_book(tmp_path: Path, nodes: list[SSHDNode], steps: str) -> list[str]:
    """Arguments for a runbook of `steps` on `nodes` (read from a cluster file, as ha-rollback does)."""
    cluster = tmp_path / "cluster.yml"
    cluster.write_text(cluster_yaml(nodes))
    return [str(write_runbook(tmp_path, nodes_runbook("node-book", steps))), "--var", f"cluster={cluster}"]


def test_ten_mib_on_both_streams_at_once(tmp_path: Path, nodes: list[SSHDNode], lab: Lab) -> None:
    steps = """\
  - id: flood
    title: Print 10 MiB on stdout and on stderr at the same time
    on: nodes
    timeout: 60s
    expect: {exit_code: 3}
    run: |
      head -c 10485760 /dev/zero | tr '\\0' e | fold -w 1023 >&2 &
      head -c 10485760 /dev/zero | tr '\\0' o | fold -w 1023
      wait
      exit 3
"""
    node = nodes[0]
    done = lab.run_here(*node_book(tmp_path, [node], steps))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    [end] = [r for r in journal(lab.state) if r["type"] == "step-end"]
    assert end["exit_code"] == 3 and end["status"] == "ok"
    lines = output_lines(lab.state, "flood", node.address)
    for stream, char in (("stdout", "o"), ("stderr", "e")):
        got = [line.split(f" [{stream}] ", 1)[1] for line in lines if f" [{stream}] " in line]
        assert sum(map(len, got)) == 10 * 2**20 and set("".join(got)) == {char}, stream  # every byte arrived


def test_stdin_is_at_end_of_file_and_ssh_config_is_read(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    node = nodes[0]
    write_ssh_home(
        lab.home,
        nodes,
        config=f"Host db-primary\n  HostName {node.address}\n  Port {node.port}\n"
        f"  User {node.user}\n  IdentityFile {node.client_key}\n",
    )
    book = write_runbook(
        tmp_path,
        """\
runbook: 1
name: stdin-eof
version: "1.0"
title: stdin is at end of file
targets:
  db: {ssh: {hosts: [db-primary]}}
steps:
  - id: read-stdin
    title: Read stdin
    on: db
    timeout: 20s
    run: |
      cat
      read -r line || echo "stdin: end of file on $RUNBOOK_TEST_NODE"
      echo 'shown as printed: :warning: [bold]x[/bold]'
""",
    )
    done = lab.run_here(book)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"db-primary | stdin: end of file on {node.address}" in done.stdout
    assert "db-primary | shown as printed: :warning: [bold]x[/bold]" in done.stdout


def test_an_ipv6_host_written_in_brackets(tmp_path: Path, sshd_cluster: SSHDCluster, home: Path) -> None:
    """`user@[::1]:port` in a hosts list, as OpenSSH writes a destination: the run reaches that sshd, and
    the journal and the summary name the host by its address."""
    node = sshd_cluster.extra("::1", sshd_cluster.authorized_keys)
    write_ssh_home(home, [node])  # known_hosts: [::1]:port
    book = write_runbook(
        tmp_path,
        'runbook: 1\nname: v6\nversion: "1"\ntitle: IPv6\ntargets:\n  nodes:\n    ssh:\n'
        f"      hosts: ['{node.user}@[::1]:{node.port}']\n      key_file: {node.client_key}\n"
        "steps:\n  - {id: where, title: Where, on: nodes, run: 'echo on $RUNBOOK_TEST_NODE'}\n",
    )
    lab = work_lab(tmp_path, home, [node])
    done = lab.run_here(str(book), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary_rows(done.stdout) == [("where", "::1", "ok")]
    [line] = [r for r in journal(lab.state) if r["type"] == "step-end"]
    assert line["host"] == "::1" and line["status"] == "ok"
    assert "on ::1" in done.stdout  # the command ran on that sshd (its RUNBOOK_TEST_NODE)


def test_timeout_kills_the_command_on_the_node(tmp_path: Path, nodes: list[SSHDNode], lab: Lab) -> None:
    marker = f"3600.{secrets.randbelow(10**6):06d}"  # a sleep no other process has
    steps = f"""\
  - id: hang
    title: Hang
    on: nodes
    timeout: 2s
    run: sleep {marker}
"""
    node = nodes[0]
    done = lab.run_here(*node_book(tmp_path, [node], steps))  # an hour's sleep: only the kill ends the run
    assert done.returncode == 1, done.stdout + done.stderr
    assert summary_rows(done.stdout) == [("hang", node.address, "timed out")]
    assert "killed after 2s" in done.stdout
    wait_for(lambda: processes_matching(f"sleep {marker}") == [], "the killed sleep to be gone", timeout=5)


def test_ctrl_c_stops_the_commands_on_every_node(tmp_path: Path, nodes: list[SSHDNode], lab: Lab) -> None:
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    steps = f"""\
  - id: long
    title: Run for an hour
    on: nodes
    run: |
      touch "$HOME/started"
      sleep {marker}
  - id: after
    title: Never reached
    on: nodes
    run: touch "$HOME/after"
"""
    running = lab.start(*node_book(tmp_path, nodes, steps))
    try:
        wait_for(
            lambda: all((n.home / "started").exists() for n in nodes),
            "the command to start everywhere",
            timeout=20,
        )
        wait_for(lambda: len(processes_matching(f"sleep {marker}")) >= len(nodes), "the sleeps", timeout=5)
    finally:
        code, out, err = running.stop(signal.SIGINT)
    assert code == 130, out + err
    wait_for(lambda: processes_matching(f"sleep {marker}") == [], "every sleep to be gone", timeout=5)
    assert summary_rows(out) == [("long", node.address, "interrupted") for node in nodes]
    assert not any((n.home / "after").exists() for n in nodes)
    records = journal(lab.state)
    assert [r["signal"] for r in records if r["type"] == "interrupted"] == ["SIGINT"]
    end = records[-1]
    assert end["type"] == "run-end" and end["status"] == "interrupted" and end["exit_code"] == 130


# -- a host no later step needs is released: closed in the background while the run goes on ------------------


_ON_NODES = (
    "  - id: on-nodes\n    title: The one step on the nodes\n    on: nodes\n    run: echo on the node\n"
)


def _here(title: str, script: str) -> str:
    """A local step `here` that runs `script` (its lines indented by six spaces)."""
    return f"  - id: here\n    title: {title}\n    run: |\n{script}"


def _node_files(nodes: list[SSHDNode], wanted: str) -> str:
    """A local step's script: poll (bounded) until every node's files (its `nodefiles.DIR`) are `gone`, or
    until each has some (`kept`); exit 1 if that never happens. The nodes run on this machine."""
    dirs = " ".join(f'"{n.home / nodefiles.DIR}"' for n in nodes)
    test = '[ -z "$(ls -A "$d" 2>/dev/null)" ]' if wanted == "gone" else '[ -n "$(ls -A "$d" 2>/dev/null)" ]'
    return f"""\
      n=0
      while [ $n -lt 500 ]; do
        left=""
        for d in {dirs}; do {test} || left="$left $d"; done
        [ -z "$left" ] && {{ echo "every node's files: {wanted}"; exit 0; }}
        sleep 0.02; n=$((n+1))
      done
      echo "not {wanted}:$left"; exit 1
"""


def test_a_host_no_later_step_needs_is_closed_while_the_later_local_steps_run(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """Each node's last command leaves its files on the node until its connection is closed (a line on the
    control channel deletes them): the local step after the last SSH step sees them go while it runs."""
    steps = _ON_NODES + _here("The nodes are released meanwhile", _node_files(nodes, "gone"))
    done = lab.run_here(*node_book(tmp_path, nodes, steps))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every node's files: gone" in done.stdout
    assert summary_rows(done.stdout)[-1] == ("here", "local", "ok")


def test_a_host_a_later_step_needs_keeps_its_one_connection(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """Two SSH steps with a local one between: the nodes are not released after the first (their files wait
    for the close, the local step sees them still there), and each node sees one login for the whole run."""
    logins = [n.accepted_connections() for n in nodes]
    steps = _ON_NODES + _here("The nodes are kept", _node_files(nodes, "kept"))
    steps += "  - id: again\n    title: On the nodes again\n    on: nodes\n    run: echo again\n"
    done = lab.run_here(*node_book(tmp_path, nodes, steps))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every node's files: kept" in done.stdout
    assert [n.accepted_connections() - before for n, before in zip(nodes, logins)] == [1] * len(nodes)


def test_ctrl_c_in_a_local_step_after_the_nodes_were_released(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """Ctrl-C while a local step runs and the nodes are released (closed, or being closed): exit 130, the
    journal says so as for any interrupt, nothing hangs, and the nodes' files still go."""
    started = tmp_path / "here.started"
    wait = f'      touch "{started}"\n      n=0; while [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done\n'
    steps = _ON_NODES + _here("Wait for Ctrl-C", wait)
    steps += f'  - id: after\n    title: Never reached\n    run: touch "{tmp_path / "after"}"\n'
    running = lab.start(*node_book(tmp_path, nodes, steps))
    try:
        wait_for(started.exists, "the local step to start", timeout=20)
    finally:
        code, out, err = running.stop(signal.SIGINT)
    assert code == 130, out + err
    assert summary_rows(out) == [
        *(("on-nodes", node.address, "ok") for node in nodes),
        ("here", "local", "interrupted"),
    ]
    assert not (tmp_path / "after").exists()
    records = journal(lab.state)
    assert [r["signal"] for r in records if r["type"] == "interrupted"] == ["SIGINT"]
    end = records[-1]
    assert end["type"] == "run-end" and end["status"] == "interrupted" and end["exit_code"] == 130
    empty = lambda: all(not any((n.home / nodefiles.DIR).iterdir()) for n in nodes)  # noqa: E731
    wait_for(empty, "every node's files to go", timeout=10)


def test_retries_run_a_failing_command_again(tmp_path: Path, nodes: list[SSHDNode], lab: Lab) -> None:
    node = nodes[0]
    flaky = node.bin_dir / "flaky"  # fails on its first call: a counter file in the node's HOME
    flaky.write_text(
        '#!/bin/sh\nn=$(( $(cat "$HOME/flaky.count" 2>/dev/null || echo 0) + 1 ))\n'
        'echo "$n" > "$HOME/flaky.count"\necho "flaky call $n"\n[ "$n" -ge 2 ]\n'
    )
    flaky.chmod(0o755)
    steps = """\
  - id: flaky
    title: Succeeds the second time
    on: nodes
    retries: {count: 3, delay: 100ms}
    run: flaky
"""
    done = lab.run_here(*node_book(tmp_path, [node], steps))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (node.home / "flaky.count").read_text() == "2\n"
    assert f"{node.address}: attempt 1 failed; retrying" in done.stdout
    assert f"{node.address} | flaky call 2" in done.stdout


MOVABLE = """\
runbook: 1
name: moved-alias
version: "1.0"
title: A host known by its alias
targets:
  db: {ssh: {hosts: [db-primary]}}
steps:
  - id: where
    title: Where am I
    on: db
    run: echo "on $RUNBOOK_TEST_NODE"
"""


def _alias(node: SSHDNode, key: Path | None = None, jump: SSHDNode | None = None) -> str:
    via = f"  ProxyJump {jump.user}@{jump.address}:{jump.port}\n" if jump else ""
    return (
        f"Host db-primary\n  HostName {node.address}\n  Port {node.port}\n  User {node.user}\n"
        f"  IdentityFile {key or node.client_key}\n{via}"
        f"Host {jump.address if jump else 'none'}\n  IdentityFile {node.client_key}\n"
    )


def test_run_plan_is_refused_once_ssh_config_sends_a_reviewed_name_elsewhere(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """The reviewed plan records where `db-primary` resolved (address, port, user, key fingerprint): moving
    the alias to another node, or giving it another key, refuses `run --plan` before anything runs there."""
    first, second = nodes[0], nodes[1]
    write_ssh_home(lab.home, nodes, config=_alias(first))
    book = write_runbook(tmp_path, MOVABLE)
    saved = tmp_path / "reviewed.json"
    assert lab.run_here(book, "--save", str(saved), task="plan").returncode == 0
    done = lab.run_here(book, "--plan", str(saved), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"db-primary | on {first.address}" in done.stdout

    write_ssh_home(lab.home, nodes, config=_alias(second))
    moved = lab.run_here(book, "--plan", str(saved), "--yes")
    assert moved.returncode == 2, moved.stdout + moved.stderr
    assert (
        f"hosts resolve elsewhere than when reviewed: db-primary: address {first.address} → {second.address}, "
        f"port {first.port} → {second.port}" in moved.stderr
    )
    assert f"on {second.address}" not in moved.stdout

    other = tmp_path / "other-key"
    generate_key(other)
    write_ssh_home(lab.home, nodes, config=_alias(first, key=other))
    rekeyed = lab.run_here(book, "--plan", str(saved), "--yes")
    assert rekeyed.returncode == 2, rekeyed.stdout + rekeyed.stderr
    assert f"db-primary: keys {{{first.client_key} SHA256:" in rekeyed.stderr
    assert f"→ {{{other} SHA256:" in rekeyed.stderr


def test_a_resume_is_refused_once_ssh_config_sends_a_host_name_elsewhere(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """The run header records where `db-primary` resolved when the run started: a resume after the alias
    moved to another node is refused before anything runs there (exit 2), and `--force` resumes anyway."""
    first, second = nodes[0], nodes[1]
    write_ssh_home(lab.home, nodes, config=_alias(first))
    text = (
        MOVABLE
        + """  - id: then
    title: Then
    on: db
    run: test -e "$HOME/go" && echo "then on $RUNBOOK_TEST_NODE"
"""
    )
    book = write_runbook(tmp_path, text)
    failed = lab.run_here(book, "--yes")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"db-primary | on {first.address}" in failed.stdout

    write_ssh_home(lab.home, nodes, config=_alias(second))
    (second.home / "go").touch()
    moved = lab.run_here(book, "--yes", "--resume")
    assert moved.returncode == 2, moved.stdout + moved.stderr
    assert (
        f"hosts resolve elsewhere than when the run started: db-primary: address {first.address} → "
        f"{second.address}" in moved.stderr
    )
    assert "(--force resumes anyway)" in moved.stderr
    assert "then on" not in moved.stdout

    forced = lab.run_here(book, "--yes", "--resume", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "--force: resuming although --resume" in forced.stderr
    assert f"then on {second.address}" in forced.stdout


def test_plan_shows_the_jump_host_and_identity_that_ssh_config_sets(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab
) -> None:
    """`plan` names what ~/.ssh/config decides about a host (address, user, port, IdentityFile with the
    fingerprint `ssh-keygen -l` gives, ProxyJump); the run goes that way."""
    target, jump = nodes[0], nodes[1]
    write_ssh_home(lab.home, nodes, config=_alias(target, jump=jump))
    book = write_runbook(tmp_path, MOVABLE)
    shown = lab.run_here(book, task="plan")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(target.client_key)], capture_output=True, text=True, timeout=30
    )
    fingerprint = listed.stdout.split()[1]
    assert (
        f"    with ~/.ssh/config: {target.user}@{target.address}:{target.port}, key {target.client_key} "
        f"({fingerprint}), via {jump.user}@{jump.address}:{jump.port}"
    ) in shown.stdout
    done = lab.run_here(book, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"db-primary | on {target.address}" in done.stdout


BIG_VALUE = """\
runbook: 1
name: big-value
version: "1.0"
title: A big value
variables:
  big: {type: string, required: true}
targets:
  nodes: {ssh: {hosts: [NODE], key_file: KEY}}
steps:
  - id: first
    title: First
    on: nodes
    run: echo first ran
  - id: count
    title: Count
    on: nodes
    env: {BIG: "{{ big if big|length < 150000 else '' }}"}
    run: printf %s '{{ big if big|length >= 150000 else '' }}' | wc -c; echo "env $(printf %s "$BIG" | wc -c)"
"""


@pytest.mark.parametrize(
    ("size", "said"),
    [
        (120_000, None),  # under every limit: it runs
        (140_000, "env BIG is 137 KiB: over the 128 KiB one environment string may have on Linux"),
        (200_000, "the script is 195 KiB: over the 128 KiB one argument may have on Linux (MAX_ARG_STRLEN)"),
        (1_000_000, "the script is 977 KiB: over the 256 KiB a script may have on any host"),
    ],
)
def test_a_value_too_big_for_a_command_over_ssh_is_named_before_anything_runs(
    tmp_path: Path, nodes: list[SSHDNode], lab: Lab, size: int, said: str | None
) -> None:
    """A 1 MB value in a script used to stop the run mid-way as "connection reset" (sshd drops a request
    over 256 KiB, when the script was in it), a 200 KB one as "Argument list too long" (Linux's 128 KiB per
    argument, which an `env:` value meets too): each is named at preflight, before the first step runs."""
    node = nodes[0]
    text = BIG_VALUE.replace("NODE", f"{node.user}@{node.address}:{node.port}").replace(
        "KEY", str(node.client_key)
    )
    book = write_runbook(tmp_path, text)
    values = tmp_path / "values.yml"
    values.write_text(f"big: {'a' * size}\n")
    done = lab.run_here(book, "--vars-file", str(values), "--yes")
    if said is None:
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"env {size}" in done.stdout
        return
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"step count on {node.address}: {said}" in done.stderr
    assert "first ran" not in done.stdout
