"""Targets → hosts: inline lists, inventories as data (the RKE cluster files users write), SSH settings, overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine import schema, targets
from engine.commands.plan import describe
from engine.errors import InvalidRunbook, UsageError
from engine.model import Runbook
from engine.options import Options, prepare
from engine.targets import Host, parse_host, parse_overrides
from engine.transports import Agent, Transport, parse_destination
from engine.validation import validate
from runbooks import fill_cluster

ROOT = Path(__file__).resolve().parent.parent
ROLLBACK = "runbooks/ha-rollback.yml"
KEY = "/keys/cluster_ed25519"
NODES = {"ADDR0": "10.0.0.11", "PORT0": "2201", "ADDR1": "10.0.0.12", "PORT1": "2202"}
NODES |= {"ADDR2": "10.0.0.13", "PORT2": "22", "USER": "rancher", "KEY": KEY}
VARIABLES = "variables: {rancher_host: {default: h}, who: {default: w}, k: {default: k}}\n"
PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAnot-a-real-key\n"
PRIVATE += "-----END OPENSSH PRIVATE KEY-----"


@pytest.fixture(scope="module")
def rollback() -> Runbook:
    return validate(ROOT / ROLLBACK, ROLLBACK).runbook


def context(rke_dir: str | Path, **values: Any) -> dict[str, Any]:
    return {"rke_dir": str(rke_dir), "cluster_config": "rancher-cluster.yml", "platform": "linux", **values}


def problems(error: pytest.ExceptionInfo[InvalidRunbook]) -> list[str]:
    return [str(p) for p in error.value.problems]


def cluster_hosts(rollback: Runbook, tmp_path: Path, text: str) -> tuple[Host, ...]:
    """The `nodes` of ha-rollback for the cluster file `text` (written in tmp_path, the RKE directory)."""
    (tmp_path / "rancher-cluster.yml").write_text(text, encoding="utf-8")
    return targets.resolve(rollback, context(tmp_path))["nodes"].hosts


def book(tmp_path: Path, ssh: str, steps: str = "steps: [{id: a, title: A, run: 'true'}]\n") -> Runbook:
    """A runbook whose target `t` has the `ssh:` block `ssh` (indented by 6)."""
    text = f'runbook: 1\nname: t\nversion: "1"\ntitle: T\n{VARIABLES}targets:\n  t:\n    ssh:\n{ssh}{steps}'
    path = tmp_path / "book.yml"
    path.write_text(text, encoding="utf-8")
    return validate(path, "book.yml").runbook


# -- the cluster files users write, read as rke reads them ---------------------------------------------


def test_the_documentation_cluster_file(rollback: Runbook, home: Path) -> None:
    resolved = targets.resolve(rollback, context(ROOT / "tests/data/rke"))
    nodes = resolved["nodes"]
    assert (nodes.local, nodes.concurrency) == (False, 10)
    default = str(home / ".ssh/id_rsa")  # rke's default key, where neither the node nor the cluster names one
    assert nodes.hosts == (
        Host("10.0.0.11", "10.0.0.11", user="ubuntu", port=2222, key_file=default, agent=Agent.NO),
        Host(
            "10.0.0.12",
            "10.0.0.12",
            user="ubuntu",
            port=22,
            key_file=str(home / ".ssh/rke_node2"),
            agent=Agent.NO,
        ),
        Host(
            "node3.example.com",
            "node3.example.com",
            user="rancher",
            port=22,
            key_file=default,
            agent=Agent.NO,
        ),
    )
    assert nodes.hosts[0].vars["role"] == ["controlplane", "etcd", "worker"]
    assert resolved["workstation"].hosts == (targets.LOCAL_HOST,)
    assert resolved["local"].hosts == (targets.LOCAL_HOST,)


def test_a_cluster_level_key_with_ports_as_text_and_empty_strings(rollback: Runbook, tmp_path: Path) -> None:
    hosts = cluster_hosts(rollback, tmp_path, fill_cluster("cluster-key.yml", NODES))
    assert [(h.name, h.address, h.user, h.port, h.key_file, h.agent, h.jump) for h in hosts] == [
        ("10.0.0.11", "10.0.0.11", "rancher", 2201, KEY, Agent.NO, ()),  # "" key path: the cluster's key
        ("10.0.0.12", "10.0.0.12", "rancher", 2202, KEY, Agent.NO, ()),
        ("10.0.0.13", "10.0.0.13", "rancher", 22, KEY, Agent.NO, ()),
    ]
    assert all(h.key is None and h.cert is None and h.cert_file is None for h in hosts)
    # hostname_override and internal_address are not used for SSH, but steps can read them
    assert [h.vars.get("hostname_override") for h in hosts] == ["cp-1", "", "worker-2"]
    assert [h.vars["role"] for h in hosts] == [["controlplane", "etcd"], ["worker"], ["worker"]]


def test_key_paths_relative_to_the_cluster_file_under_home_or_rkes_default(
    rollback: Runbook, tmp_path: Path, home: Path
) -> None:
    hosts = cluster_hosts(rollback, tmp_path, fill_cluster("relative-keys.yml", NODES))
    assert [h.key_file for h in hosts] == [
        str(tmp_path / "keys/node_key"),
        str(home / ".ssh/rke_key"),
        str(home / ".ssh/id_rsa"),
    ]


def test_agent_auth_means_the_agent_alone(rollback: Runbook, tmp_path: Path) -> None:
    hosts = cluster_hosts(rollback, tmp_path, fill_cluster("agent.yml", NODES))
    assert [(h.agent, h.key_file, h.key) for h in hosts] == [(Agent.ONLY, None, None)] * 2
    assert hosts[0].reach == "ssh rancher@10.0.0.11:2201, the SSH agent only"


def test_an_inline_key_wins_over_a_path_and_is_never_shown(rollback: Runbook, tmp_path: Path) -> None:
    text = fill_cluster(
        "inline-key.yml", {**NODES, "INLINE_KEY": "".join(f"      {line}\n" for line in PRIVATE.splitlines())}
    )
    hosts = cluster_hosts(rollback, tmp_path, text)
    assert [(h.key, h.key_file) for h in hosts] == [(PRIVATE + "\n", None)] * 2
    shown = [repr(hosts), *(h.reach for h in hosts), *(h.display for h in hosts), repr(hosts[0].ssh_target())]
    assert not any("not-a-real-key" in text for text in shown)
    assert hosts[0].reach == "ssh rancher@10.0.0.11:2201, inline key"


def test_a_bastion_host_is_the_jump_host_of_every_node(rollback: Runbook, tmp_path: Path) -> None:
    values = {**NODES, "BASTION": "203.0.113.5", "BASTION_PORT": "2222", "BASTION_KEY": "keys/bastion"}
    hosts = cluster_hosts(rollback, tmp_path, fill_cluster("bastion.yml", values))
    bastion = Host(
        "203.0.113.5",
        "203.0.113.5",
        user="rancher",
        port=2222,
        key_file=str(tmp_path / "keys/bastion"),
        agent=Agent.NO,
    )
    assert [h.jump for h in hosts] == [(bastion,)] * 3
    assert [h.key_file for h in hosts] == [KEY] * 3
    assert hosts[0].reach == (
        f"ssh rancher@10.0.0.11:2201, key {KEY}, via rancher@203.0.113.5:2222 (key {tmp_path}/keys/bastion)"
    )
    target = hosts[0].ssh_target()
    assert target.jump[0].hostname is None and target.jump[0].key_file == f"{tmp_path}/keys/bastion"


def test_a_bastion_without_a_key_path_uses_the_cluster_key(rollback: Runbook, tmp_path: Path) -> None:
    text = (
        f"ssh_key_path: {KEY}\nbastion_host: {{address: b.example, user: jump}}\n"
        "nodes:\n  - {address: a, user: u}\n"
    )
    [host] = cluster_hosts(rollback, tmp_path, text)
    assert host.jump == (Host("b.example", "b.example", user="jump", port=22, key_file=KEY, agent=Agent.NO),)


# -- inventories as data -------------------------------------------------------------------------------------


def test_where_keeps_entries_and_templates_see_the_whole_inventory(tmp_path: Path) -> None:
    (tmp_path / "fleet.yml").write_text(
        "user: ops\nport: 2200\nhosts:\n  - {name: a, role: web}\n  - {name: b, role: db}\n  - {name: c, role: web}\n",
        encoding="utf-8",
    )
    runbook = book(
        tmp_path,
        f"      from_file: {tmp_path}/fleet.yml\n      each: hosts\n      where: item.role == 'web'\n"
        "      host: '{{ item.name }}'\n      user: '{{ inventory.user }}'\n      port: '{{ inventory.port }}'\n",
    )
    hosts = targets.resolve(runbook, {})["t"].hosts
    assert [(h.name, h.user, h.port, h.vars) for h in hosts] == [
        ("a", "ops", 2200, {"name": "a", "role": "web"}),
        ("c", "ops", 2200, {"name": "c", "role": "web"}),
    ]


def test_an_inventorys_ssh_settings_are_rendered_once_unless_they_read_the_entry(tmp_path: Path) -> None:
    """The settings are rendered once for all entries when no template reads `item` or `inventory` (the only
    names that differ between entries): a `random` port, rendered per entry, would differ among 30 hosts."""
    (tmp_path / "fleet.yml").write_text(
        "hosts:\n" + "".join(f"  - {{name: h{i}, user: u{i}}}\n" for i in range(30)), encoding="utf-8"
    )
    inventory = (
        f"      from_file: {tmp_path}/fleet.yml\n      each: hosts\n      host: '{{{{ item.name }}}}'\n"
    )
    once = book(
        tmp_path, inventory + "      port: '{{ range(1000, 60000) | random }}'\n      user: '{{ who }}'\n"
    )
    hosts = targets.resolve(once, {"who": "ops"})["t"].hosts
    assert len({h.port for h in hosts}) == 1 and {h.user for h in hosts} == {"ops"}
    each = book(tmp_path, inventory + "      user: '{{ item.user }}'\n      jump: '{{ who }}@j'\n")
    hosts = targets.resolve(each, {"who": "ops"})["t"].hosts
    assert [h.user for h in hosts] == [f"u{i}" for i in range(30)]
    assert {h.jump[0].user for h in hosts} == {"ops"}


def test_a_where_that_keeps_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "fleet.yml").write_text("hosts: [{name: a}]\n", encoding="utf-8")
    runbook = book(
        tmp_path,
        f"      from_file: {tmp_path}/fleet.yml\n      each: hosts\n      where: 'false'\n      host: x\n",
    )
    with pytest.raises(InvalidRunbook) as error:
        targets.resolve(runbook, {})
    assert problems(error) == [
        f"book.yml:11:14: targets.t.ssh.where: no entry of 'hosts' in '{tmp_path}/fleet.yml' is kept by where: false"
    ]


def test_steps_see_their_hosts_inventory_entry(tmp_path: Path) -> None:
    (tmp_path / "fleet.yml").write_text("hosts:\n  - {name: a, role: [web]}\n  - {name: b, role: [db]}\n")
    book(
        tmp_path,
        f"      from_file: {tmp_path}/fleet.yml\n      each: hosts\n      host: '{{{{ item.name }}}}'\n",
        "steps:\n  - id: s\n    title: S\n    on: t\n"
        "    run: \"{% if 'web' in host.vars.role %}restart web"
        '{% else %}restart {{ host.vars.role[0] }}{% endif %}"\n',
    )
    _validated, plan = prepare(Options(str(tmp_path / "book.yml")))
    assert [(hp.host.name, hp.variants[0].script) for hp in plan.steps[0].hosts] == [
        ("a", "restart web"),
        ("b", "restart db"),
    ]


def test_templated_hosts_and_settings_on_a_host_list(tmp_path: Path, home: Path) -> None:
    runbook = book(
        tmp_path,
        "      hosts: ['{{ rancher_host }}', 'admin@b:2201']\n      user: '{{ who }}'\n      port: 2222\n"
        "      key_file: ~/.ssh/deploy\n      cert_file: keys/deploy-cert.pub\n      agent: yes\n"
        "      jump: 'ops@j1:2022,j2'\n",
    )
    hosts = targets.resolve(runbook, {"rancher_host": "rancher.example", "who": "deploy"})["t"].hosts
    jump = (Host("j1", "j1", user="ops", port=2022), Host("j2", "j2"))
    key = str(home / ".ssh/deploy")
    assert hosts == (
        Host(
            "rancher.example",
            "rancher.example",
            user="deploy",
            port=2222,
            key_file=key,
            cert_file="keys/deploy-cert.pub",
            agent=Agent.YES,
            jump=jump,
        ),
        Host(
            "b",
            "b",
            user="admin",
            port=2201,
            key_file=key,
            cert_file="keys/deploy-cert.pub",
            agent=Agent.YES,
            jump=jump,
        ),
    )
    assert hosts[0].reach == (
        f"ssh deploy@rancher.example:2222, key {key}, the SSH agent, certificate keys/deploy-cert.pub, "
        "via ops@j1:2022 (the SSH agent, default keys) → "
        "j2 (user and port from ~/.ssh/config) (the SSH agent, default keys)"
    )


def test_only_a_leading_tilde_slash_is_home(tmp_path: Path, home: Path) -> None:
    runbook = book(tmp_path, "      hosts: [a]\n      key_file: '{{ k }}'\n")
    for written, expected in [("~/k", str(home / "k")), ("~root/k", "~root/k"), ("a/~/k", "a/~/k")]:
        assert targets.resolve(runbook, {"k": written})["t"].hosts[0].key_file == expected


@pytest.mark.parametrize(
    ("ssh", "expected"),
    [
        (
            "      agent: maybe\n",
            "book.yml:10:14: targets.t.ssh.agent: agent 'maybe': expected yes, no or only",
        ),
        (
            "      key: '{{ k }}'\n      key_file: /k\n",
            "book.yml:10:12: targets.t.ssh.key: both key and key_file are set: give one",
        ),
        (
            "      agent: only\n      key_file: /k\n",
            "book.yml:10:14: targets.t.ssh.agent: agent: only, but a key is set too: leave key and key_file "
            "empty when only the agent is used",
        ),
        (
            "      cert_file: /c\n",
            "book.yml:10:18: targets.t.ssh.cert_file: a certificate needs its key (key or key_file)",
        ),
        ("      port: x\n", "book.yml:10:13: targets.t.ssh.port: port 'x' is not a number"),
        (
            "      jump: 'a b'\n",
            "book.yml:10:13: targets.t.ssh.jump: jump host 'a b': expected host, user@host or user@host:port "
            "([addr] for an IPv6 address)",
        ),
    ],
)
def test_settings_that_cannot_work_are_errors_at_their_line(tmp_path: Path, ssh: str, expected: str) -> None:
    runbook = book(tmp_path, "      hosts: [a]\n" + ssh)
    with pytest.raises(InvalidRunbook) as error:
        targets.resolve(runbook, {"k": PRIVATE})
    assert problems(error) == [expected]
    assert "not-a-real-key" not in expected


@pytest.mark.parametrize(
    ("ssh", "expected"),
    [
        ("      hosts: [a]\n      identity_file: /k\n", "unknown key 'identity_file'"),
        ("      hosts: [a]\n      jump: {user: u}\n", "targets.t.ssh.jump"),
        ("      hosts: [a]\n      where: 'true'\n", "'from_file' is needed with 'where'"),
        ("      hosts: [a]\n      jump: [{host: j, keyfile: k}]\n", "keyfile"),
    ],
)
def test_the_schema_refuses_settings_it_would_not_honour(tmp_path: Path, ssh: str, expected: str) -> None:
    head = 'runbook: 1\nname: t\nversion: "1"\ntitle: T\ntargets:\n  t:\n    ssh:\n'
    text = f"{head}{ssh}steps: [{{id: a, title: A, run: x}}]\n"
    (tmp_path / "book.yml").write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        validate(tmp_path / "book.yml", "book.yml")
    assert any(expected in line for line in problems(error)), problems(error)


def test_plan_shows_how_each_host_is_reached(tmp_path: Path, home: Path) -> None:
    values = {**NODES, "BASTION": "203.0.113.5", "BASTION_PORT": "2222", "BASTION_KEY": "keys/bastion"}
    (tmp_path / "rancher-cluster.yml").write_text(fill_cluster("bastion.yml", values), encoding="utf-8")
    variables = ("snapshot=s1", "prior_version=v2.0.8", f"rke_dir={tmp_path}")
    _validated, plan = prepare(Options(ROLLBACK, var=variables, platform="linux"))
    text = describe(plan)
    via = f"via rancher@203.0.113.5:2222 (key {tmp_path}/keys/bastion)"
    assert "\nhosts of nodes:\n" in text
    for address, port in (("10.0.0.11", 2201), ("10.0.0.12", 2202), ("10.0.0.13", 22)):
        assert f"  {address}: ssh rancher@{address}:{port}, key {KEY}, {via}\n" in text
    restarts = {
        hp.host.name: hp.variants[0].script.splitlines()[0] for hp in plan.step("restart-components").hosts
    }
    assert restarts == {
        "10.0.0.11": "docker restart kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy",
        "10.0.0.12": "docker restart kubelet kube-proxy",
        "10.0.0.13": "docker restart kubelet kube-proxy",
    }


# -- overrides and errors ------------------------------------------------------------------------------------


def test_hosts_override_replaces_the_inventory_without_reading_it(rollback: Runbook) -> None:
    resolved = targets.resolve(rollback, context("/nonexistent"), hosts={"nodes": "a, admin@b:2200,"})
    assert resolved["nodes"].hosts == (Host("a", "a"), Host("b", "b", user="admin", port=2200))


def test_hosts_override_of_a_host_list_keeps_its_settings(tmp_path: Path) -> None:
    runbook = book(tmp_path, "      hosts: [a]\n      user: deploy\n      agent: only\n      jump: j\n")
    [host] = targets.resolve(runbook, {}, hosts={"t": "b:2200"})["t"].hosts
    assert host == Host("b", "b", user="deploy", port=2200, agent=Agent.ONLY, jump=(Host("j", "j"),))


TWO_TARGETS = """\
  app:
    ssh:
      hosts: [{app}]
  admin:
    ssh:
      hosts: [{admin}]
{settings}steps:
  - {{id: a, title: A, on: app, run: 'true'}}
  - {{id: b, title: B, on: admin, run: 'true'}}
"""


def two_targets(tmp_path: Path, app: str, admin: str, settings: str = "") -> Runbook:
    text = f'runbook: 1\nname: t\nversion: "1"\ntitle: T\ntargets:\n{TWO_TARGETS}'
    path = tmp_path / "two.yml"
    path.write_text(text.format(app=app, admin=admin, settings=settings), encoding="utf-8")
    return validate(path, "two.yml").runbook


@pytest.mark.parametrize(
    ("app", "admin", "settings", "here", "there"),
    [
        ("deploy@web1", "root@web1", "", "root@web1 (port", "deploy@web1 (port"),
        ("web1:22", "web1:2222", "", "web1:2222 (user", "web1:22 (user"),
        ("web1", "web1", "      key_file: /keys/admin\n", "key /keys/admin", "the SSH agent, default keys"),
        ("web1", "web1", "      jump: bastion\n", "via bastion", "default keys. A run"),
    ],
)
def test_one_host_name_reached_two_ways_is_refused_at_the_target(
    tmp_path: Path, app: str, admin: str, settings: str, here: str, there: str
) -> None:
    """A run keeps one connection per host name and keys every outcome by it: the second way would be
    silently ignored (`root@web1`'s steps run as deploy, or the other way round)."""
    runbook = two_targets(tmp_path, app, admin, settings)
    with pytest.raises(InvalidRunbook) as caught:
        targets.resolve(runbook, {})
    [problem] = problems(caught)
    assert problem.startswith("two.yml:9:3: targets.admin: host 'web1' is reached two ways: here as ")
    assert (
        here in problem.split("; by target 'app' as ")[0]
        and there in problem.split("; by target 'app' as ")[1]
    )
    assert problem.endswith("give one of them another name (a Host alias in ~/.ssh/config)")


def test_one_host_in_two_targets_reached_alike_is_one_connection(tmp_path: Path) -> None:
    two_targets(tmp_path, "deploy@web1, web2", "deploy@web1", "      user: deploy\n")
    validated = validate(tmp_path / "two.yml", "two.yml")
    _, plan = prepare(Options(str(tmp_path / "two.yml"), platform="linux"), validated=validated)
    assert [h.display for h in plan.remote_hosts()] == ["deploy@web1", "web2"]
    both = [h.display for name in ("app", "admin") for h in plan.targets[name].hosts]
    assert both == ["deploy@web1", "web2", "deploy@web1"]  # both targets keep it; one connection serves them


def test_two_entries_of_one_target_for_one_host_must_agree(tmp_path: Path) -> None:
    runbook = book(tmp_path, "      hosts: [deploy@web1, root@web1, root@web1]\n")
    with pytest.raises(InvalidRunbook) as caught:
        targets.resolve(runbook, {})
    [problem] = problems(caught)  # once for the name, though the third entry disagrees again
    assert "targets.t: host 'web1' is reached two ways: here as root@web1" in problem
    assert "; by another entry of this target as deploy@web1" in problem


def test_target_local_keeps_the_hosts_but_runs_them_here(rollback: Runbook) -> None:
    resolved = targets.resolve(rollback, context(ROOT / "tests/data/rke"), run_locally={"nodes": "local"})
    nodes = resolved["nodes"]
    assert nodes.local is True
    assert [h.name for h in nodes.hosts] == ["10.0.0.11", "10.0.0.12", "node3.example.com"]
    assert all(h.transport is Transport.LOCAL and h.vars["role"] for h in nodes.hosts)


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
        f"{ROLLBACK}:91:18: targets.nodes.ssh.from_file: cannot read the inventory "
        f"'{tmp_path}/rancher-cluster.yml': cannot read: No such file or directory"
    ]


@pytest.mark.parametrize(
    ("inventory", "expected"),
    [
        ("nodes: {}\n", "91:18: targets.nodes.ssh.from_file: '{path}' has no list at 'nodes'"),
        ("nodes: []\n", "91:18: targets.nodes.ssh.from_file: '{path}' has no list at 'nodes'"),
        (
            "nodes:\n  - address: a\n    user: u\n  - user: u\n",
            "93:13: targets.nodes.ssh.host: {path}: entry 1 of 'nodes': "
            "undefined: 'dict object' has no attribute 'address'",
        ),
        (
            "nodes:\n  - address: ''\n    user: u\n",
            "93:13: targets.nodes.ssh.host: {path}: entry 0 of 'nodes' has no host",
        ),
        (
            "nodes:\n  - address: a\n    user: u\n    port: ssh\n",
            "95:13: targets.nodes.ssh.port: {path}: entry 0 of 'nodes': port 'ssh' is not a number",
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
        ("deploy@web2", Host("web2", "web2", user="deploy")),
        ("deploy@web2:2200", Host("web2", "web2", user="deploy", port=2200)),
        (" 10.0.0.1:22 ", Host("10.0.0.1", "10.0.0.1", user=None, port=22)),
        ("[fd00::11]", Host("fd00::11", "fd00::11")),  # IPv6 in brackets, as OpenSSH writes it
        ("rancher@[fd00::11]:2201", Host("fd00::11", "fd00::11", user="rancher", port=2201)),
        ("ssh://deploy@web2:2200", Host("web2", "web2", user="deploy", port=2200)),
    ],
)
def test_parse_host(spec: str, host: Host) -> None:
    assert parse_host(spec) == host


HOSTS_GOOD = (
    "web1",
    "deploy@web2:2200",
    "10.0.0.1:22",
    "[fd00::11]",
    "ops@[fe80::1%eth0]:65535",
    "ssh://u@h:1",
)
HOSTS_BAD = (
    "",
    "a b",
    "u@",
    "a:port",
    "a@b@c",
    "fd00::11",
    "[web1]",
    "web1:0",
    "web1:65536",
    "web1:022",
    "a/b",
)


@pytest.mark.parametrize("spec", HOSTS_BAD)
def test_parse_host_refuses_what_is_not_a_host(spec: str) -> None:
    with pytest.raises(
        UsageError, match=r"is not a host: expected host, user@host or user@host:port \(\[addr\]"
    ):
        parse_host(spec)


@pytest.mark.parametrize("spec", [*HOSTS_GOOD, *HOSTS_BAD])
def test_the_schema_and_the_engine_read_hosts_alike(spec: str) -> None:
    """Editors judge `hosts:` entries by the schema's pattern, the engine by `parse_destination`: one verdict."""
    items = schema.schema()["$defs"]["ssh"]["properties"]["hosts"]["items"]
    engine_says, schema_says = parse_destination(spec) is not None, schema.validator(items).is_valid(spec)
    assert engine_says == schema_says == (spec in HOSTS_GOOD)


def test_hosts_jump_hosts_and_proxyjump_read_one_grammar(tmp_path: Path) -> None:
    """A jump host in a runbook and one in ~/.ssh/config's ProxyJump are read like a hosts entry."""
    runbook = book(
        tmp_path, "      hosts: ['ops@[fd00::11]:2201']\n      jump: 'admin@[fd00::1]:2222, inner'\n"
    )
    [host] = targets.resolve(runbook, {})["t"].hosts
    assert (host.address, host.user, host.port) == ("fd00::11", "ops", 2201)
    assert [(hop.address, hop.user, hop.port) for hop in host.jump] == [
        ("fd00::1", "admin", 2222),
        ("inner", None, None),
    ]
    broken = book(tmp_path, "      hosts: [web1]\n      jump: 'admin@bastion:99999'\n")
    with pytest.raises(InvalidRunbook) as caught:
        targets.resolve(broken, {})
    assert (
        "jump host 'admin@bastion:99999': expected host, user@host or user@host:port" in problems(caught)[0]
    )


def test_parse_overrides() -> None:
    assert parse_overrides(["nodes=a,b", "web=local"], "--hosts") == {"nodes": "a,b", "web": "local"}
    for bad in ("nodes", "=a", "nodes="):
        with pytest.raises(UsageError, match=f"^--hosts '{bad}': expected TARGET=VALUE$"):
            parse_overrides([bad], "--hosts")


def test_host_context_for_templates() -> None:
    assert Host("web2", "10.1.1.2", user="deploy", port=2200, vars={"role": ["worker"]}).context() == {
        "name": "web2",
        "address": "10.1.1.2",
        "user": "deploy",
        "port": 2200,
        "vars": {"role": ["worker"]},
    }


def test_an_inventory_beside_the_runbook_via_runbook_dir_and_errors_with_the_absolute_path(
    tmp_path: Path, home: Path
) -> None:
    """Issue 23: `from_file` is relative to where the run starts, like `cwd` and `rke_dir`; `runbook.dir` (the
    runbook file's directory) reaches a file beside the runbook; a file not found is named absolutely."""
    from runbooks import in_process

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "fleet.yml").write_text("hosts: [{address: web1}, {address: web2}]\n")
    text = (
        'runbook: 1\nname: t\nversion: "1"\ntitle: T\ntargets:\n  fleet:\n'
        '    ssh: {from_file: "{{ runbook.dir }}/fleet.yml", each: hosts, host: "{{ item.address }}"}\n'
        "steps:\n  - id: a\n    title: A\n    on: fleet\n    run: echo {{ runbook.dir }}\n"
    )
    (tmp_path / "ops" / "rb.yml").write_text(text)
    done = in_process(["plan", "ops/rb.yml"], tmp_path, dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert f"@ web2\n         $ echo {tmp_path}/ops\n" in done.stdout
    (tmp_path / "ops" / "rb.yml").write_text(text.replace("{{ runbook.dir }}/fleet.yml", "fleet.yml"))
    missing = in_process(["plan", "ops/rb.yml"], tmp_path, dict(os.environ))
    assert missing.returncode == 2
    assert f"cannot read the inventory 'fleet.yml' ({tmp_path}/fleet.yml): cannot read" in missing.stderr


def test_an_inventory_entry_has_a_display_name_and_is_reached_at_its_address(
    tmp_path: Path, home: Path
) -> None:
    """Issue 23: `name:` names each entry in the plan, the summary and the journal; `host` is connected to."""
    from runbooks import in_process, journal

    (tmp_path / "cluster.yml").write_text(
        "nodes:\n  - {address: 10.0.0.11, hostname_override: cp-1}\n  - {address: 10.0.0.12, hostname_override: ''}\n"
    )
    text = (
        'runbook: 1\nname: t\nversion: "1"\ntitle: T\ntargets:\n  nodes:\n'
        '    ssh: {from_file: cluster.yml, each: nodes, host: "{{ item.address }}",\n'
        '          name: "{{ item.hostname_override }}"}\n'
        "steps:\n  - id: a\n    title: A\n    on: nodes\n    run: echo {{ host.name }} {{ host.address }}\n"
    )
    (tmp_path / "rb.yml").write_text(text)
    planned = in_process(["plan", "rb.yml"], tmp_path, dict(os.environ))
    assert planned.returncode == 0, planned.stderr
    assert "@ cp-1\n         $ echo cp-1 10.0.0.11\n" in planned.stdout  # an empty name: the address
    assert "@ 10.0.0.12\n         $ echo 10.0.0.12 10.0.0.12\n" in planned.stdout
    assert "ssh 10.0.0.11" in planned.stdout  # how it is reached: its address
    env = {**os.environ, "HOME": str(home)}
    ran = in_process(["run", "rb.yml", "--target", "nodes=local", "--state-dir", "st"], tmp_path, env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "cp-1 | cp-1 10.0.0.11" in ran.stdout
    ends = [(r["step"], r["host"]) for r in journal(tmp_path / "st") if r["type"] == "step-end"]
    assert sorted(ends) == [("a", "10.0.0.12"), ("a", "cp-1")]
