"""`runbook export ansible` proven with the real thing: the exported playbook run by `ansible-playbook` (from
the test extra) against real sshd nodes, with the same recording stand-ins as `runbook run` (tests/runbooks.py).

Each test runs the engine and the export on the same lab and compares what the stand-ins recorded: the same
commands, on the same hosts, in the same order. Host keys are checked against the lab's known_hosts, as the
engine checks them (ANSIBLE_HOST_KEY_CHECKING stays on).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from sshd import SSHDCluster, SSHDNode
from test_export_ansible import load

from runbooks import (
    COMPONENTS,
    HA_ROLLBACK,
    Lab,
    Nodes,
    cluster_yaml,
    command_lines,
    docker_nodes,
    docker_on,
    identity_config,
    local_stand_in,
    nodes_runbook,
    work_lab,
    write_rollback,
    write_runbook,
    write_ssh_home,
)

pytestmark = pytest.mark.ssh

BIN = Path(sys.executable).parent
ANSIBLE_TIMEOUT = 240.0
ANSWERS = ("-e", "runbook_yes=true", "-e", "runbook_confirm_manual=true")


@pytest.fixture
def nodes(sshd_nodes: Nodes, home: Path) -> list[SSHDNode]:
    """Three nodes, each with a recording `docker`, trusted through ~/.ssh/known_hosts; the client key in
    ~/.ssh/config, as ansible's ssh finds it."""
    return docker_nodes(sshd_nodes, home, identity_file=True)


@pytest.fixture
def lab(tmp_path: Path, home: Path, nodes: list[SSHDNode]) -> Lab:
    return work_lab(tmp_path, home, nodes)


def export(lab: Lab, runbook: Path, *args: str) -> Path:
    """`runbook export ansible RUNBOOK -o out ARGS` in the lab; the output directory."""
    out = lab.root / "out"
    done = lab.run("ansible", runbook, "-o", out, *args, task="export")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def ansible_playbook(
    lab: Lab, out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook -i out/inventory.yml out/playbook.yml ARGS` as the operator, in the lab (bounded).

    OpenSSH reads the passwd entry's home, not $HOME: an `ssh` first on PATH gives every ssh Ansible starts
    (a jump host's ProxyCommand too) the lab's config and known_hosts, with host keys checked."""
    config = lab.home / ".ssh" / "ansible_config"
    own = (lab.home / ".ssh" / "config").read_text() if (lab.home / ".ssh" / "config").exists() else ""
    config.write_text(f"UserKnownHostsFile {lab.home}/.ssh/known_hosts\nStrictHostKeyChecking yes\n{own}")
    lab.bin_dir.mkdir(parents=True, exist_ok=True)
    (lab.bin_dir / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    (lab.bin_dir / "ssh").chmod(0o755)
    settings = {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(lab.home / ".ansible" / "tmp"),
        # A short ControlPersist: no ssh master outlives the test by more than 2 s.
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=2s",
        "ANSIBLE_PIPELINING": "True",
    }
    # The masters' sockets in a short directory of their own: a unix socket's path holds 108 bytes, which
    # ~/.ansible/cp under pytest's numbered temporary directories outgrows (from pytest-1000 on).
    with tempfile.TemporaryDirectory(prefix="rb-cp-", dir="/tmp", ignore_cleanup_errors=True) as sockets:
        settings["ANSIBLE_SSH_CONTROL_PATH_DIR"] = sockets
        return subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                str(out / "inventory.yml"),
                str(out / "playbook.yml"),
                *args,
            ],
            cwd=lab.root,
            env=lab.env(**{**settings, **(env or {})}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=ANSIBLE_TIMEOUT,
        )


def recorded(lab: Lab) -> dict[str, Any]:
    """What the stand-ins saw (local: argv and cwd; each node: argv), in order; then forgotten."""
    seen: dict[str, Any] = {"local": [(c["argv"], c["cwd"]) for c in lab.calls()]}
    for node in lab.nodes:
        seen[node.address] = [c["argv"] for c in node.calls()]
        node.calls_log.unlink(missing_ok=True)
    lab.calls_log.unlink(missing_ok=True)
    return seen


def engine_run(lab: Lab, runbook: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = lab.run(runbook, *args, "--yes", "--confirm-manual")
    return done.returncode, recorded(lab)


def test_exported_rollback_rolls_back_like_the_engine(lab: Lab, nodes: list[SSHDNode]) -> None:
    write_rollback(lab, cluster_yaml(nodes))
    code, by_engine = engine_run(lab, HA_ROLLBACK, *lab.rollback_vars())
    assert code == 0
    out = export(lab, HA_ROLLBACK, *lab.rollback_vars())
    unanswered = ansible_playbook(lab, out)  # no terminal, no runbook_yes: like `runbook run` without --yes
    assert unanswered.returncode != 0
    assert "the warnings were not accepted" in unanswered.stdout
    assert "is undefined" not in unanswered.stdout  # every host read the one answer (pause registers once)
    assert recorded(lab) == {"local": [], **{n.address: [] for n in nodes}}
    done = ansible_playbook(lab, out, *ANSWERS)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    local_times = [float(c["time"]) for c in lab.calls()]
    node_times = {n.address: [float(str(c["time"])) for c in n.calls()] for n in nodes}
    by_ansible = recorded(lab)
    assert by_ansible == by_engine  # the same commands, in the same directories, on the same hosts
    assert [argv[0] for argv, _ in by_ansible["local"]] == ["rke_linux-amd64"] * 2 + ["kubectl"] * 2
    assert all(len(by_ansible[n.address]) == 5 for n in nodes)  # restart, ps, restart, ps, restart
    rke_up, set_image = local_times[1], local_times[2]  # and in the same order across hosts
    assert all(rke_up < t < set_image for times in node_times.values() for t in times)


def test_a_failing_node_stops_the_playbook_as_it_stops_the_run(lab: Lab, nodes: list[SSHDNode]) -> None:
    write_rollback(lab, cluster_yaml(nodes))
    bad = nodes[1]
    docker_on(nodes, failing=bad.address)
    code, by_engine = engine_run(lab, HA_ROLLBACK, *lab.rollback_vars())
    assert code == 1
    out = export(lab, HA_ROLLBACK, *lab.rollback_vars())
    done = ansible_playbook(lab, out, *ANSWERS)
    assert done.returncode != 0, done.stdout[-4000:]
    assert recorded(lab) == by_engine
    assert [argv[0] for argv, _ in by_engine["local"]] == ["rke_linux-amd64"] * 2  # no kubectl
    assert by_engine[bad.address] == [
        ["docker", "restart", *COMPONENTS]
    ]  # `sh -e`: the first failure ends it
    assert all(len(by_engine[n.address]) == 5 for n in nodes if n is not bad)  # the others finished the step


SECRET = "s3cr3t-Value-4711"
SECRET_STEPS = """\
  - id: use-token
    title: Use the token on every node
    on: nodes
    env: {TOKEN: "{{ token }}"}
    run: |
      docker login --password {{ token }}
      echo "token is $TOKEN"
      echo '{% raw %}{{.Names}}{% endraw %}' > "$HOME/format.txt"
      docker ps --format '{% raw %}{{.Names}}{% endraw %}'
"""


def test_a_secret_is_in_no_file_and_no_output(lab: Lab, nodes: list[SSHDNode], tmp_path: Path) -> None:
    variables = "  token: {type: string, secret: true, required: true}\n"
    book = write_runbook(tmp_path, nodes_runbook("secret-book", SECRET_STEPS, nodes[:1], variables))
    secret_env = {"RUNBOOK_VAR_TOKEN": SECRET}
    assert lab.run(book, env=secret_env).returncode == 0
    by_engine = recorded(lab)
    done = lab.run("ansible", book, "-o", lab.root / "out", task="export", env=secret_env)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    for path in (lab.root / "out").iterdir():
        assert SECRET not in path.read_text(), path
    missing = ansible_playbook(lab, lab.root / "out")
    assert missing.returncode != 0 and "set RUNBOOK_VAR_TOKEN" in missing.stdout
    assert recorded(lab) == {"local": [], **{n.address: [] for n in nodes}}  # nothing ran
    ran = ansible_playbook(lab, lab.root / "out", "-v", env=secret_env)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr
    assert SECRET not in ran.stdout + ran.stderr
    assert recorded(lab) == by_engine
    assert by_engine[nodes[0].address][0] == ["docker", "login", "--password", SECRET]  # it did arrive
    assert (nodes[0].home / "format.txt").read_text() == "{{.Names}}\n"


def test_ansible_lint_finds_no_error_in_the_rollback_export(lab: Lab, nodes: list[SSHDNode]) -> None:
    write_rollback(lab, cluster_yaml(nodes))
    out = export(lab, HA_ROLLBACK, *lab.rollback_vars())
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--nocolor", "--profile", "production", "playbook.yml"],
        cwd=out,
        env=lab.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout + done.stderr


TOLERANT_STEPS = """\
  - id: restart
    title: Restart the web container
    on: nodes
    max_failed_hosts: 1
    run: docker restart web
  - id: once
    title: List the containers once
    on: nodes
    run_once: true
    run: docker ps
  - id: wait
    title: Wait until healthy
    on: nodes
    retries: {count: 4, delay: 100ms}
    until: "'healthy' in result.stdout"
    run: health
  - id: on-linux
    title: Only on Linux hosts (decided on the host)
    on: nodes
    when: platform == 'linux'
    run: docker info
  - id: on-macos
    title: Only on macOS hosts
    on: nodes
    when: platform == 'darwin'
    run: docker version
"""
HEALTH = '#!/bin/sh\nn=$(( $(cat "$HOME/health.count" 2>/dev/null || echo 0) + 1 ))\necho "$n" > "$HOME/health.count"\n'
HEALTH += '[ "$n" -ge 2 ] && echo healthy || echo starting\n'


def test_run_once_until_when_and_max_failed_hosts_as_in_the_engine(
    lab: Lab, nodes: list[SSHDNode], tmp_path: Path
) -> None:
    bad = nodes[0]  # left out after `restart`: run_once then runs on the next host
    docker_on(nodes, failing=bad.address)
    for node in nodes:
        (node.bin_dir / "health").write_text(HEALTH)
        (node.bin_dir / "health").chmod(0o755)
    book = write_runbook(tmp_path, nodes_runbook("tolerant", TOLERANT_STEPS, nodes))

    def counts() -> dict[str, str]:
        found = {
            n.address: (n.home / "health.count").read_text()
            for n in nodes
            if (n.home / "health.count").exists()
        }
        for node in nodes:
            (node.home / "health.count").unlink(missing_ok=True)
        return found

    engine = lab.run(book)
    assert engine.returncode == 1, engine.stdout + engine.stderr  # a tolerated failure still fails the run
    by_engine, engine_counts = recorded(lab), counts()
    assert by_engine[bad.address] == [["docker", "restart", "web"]]
    assert by_engine[nodes[1].address] == [["docker", "restart", "web"], ["docker", "ps"], ["docker", "info"]]
    assert engine_counts == {nodes[1].address: "2\n", nodes[2].address: "2\n"}
    out = export(lab, book)
    done = ansible_playbook(lab, out)
    assert done.returncode != 0, done.stdout[-4000:]
    assert "hosts failed within max_failed_hosts" in done.stdout
    assert (recorded(lab), counts()) == (by_engine, engine_counts)


def test_nodes_behind_a_jump_host_with_its_own_key(
    lab: Lab, nodes: list[SSHDNode], tmp_path: Path, sshd_cluster: SSHDCluster
) -> None:
    """The jump host's own log shows a forwarding to each node, for the engine and for Ansible alike."""
    jump = sshd_cluster.extra("127.0.0.101", sshd_cluster.authorized_keys, log_level="DEBUG1")
    write_ssh_home(lab.home, [*nodes, jump], config=identity_config(nodes))
    hops = f"{{host: {jump.address}, port: {jump.port}, user: {jump.user}, key_file: {jump.client_key}}}"
    text = nodes_runbook("behind", "  - {id: ps, title: List, on: nodes, run: docker ps}\n", nodes)
    book = write_runbook(
        tmp_path, text.replace("    concurrency: 4\n", f"      jump: {hops}\n    concurrency: 4\n")
    )

    def forwarded() -> list[str]:
        log = jump.log.read_text()
        return sorted(set(re.findall(r"server_request_direct_tcpip: originator .* target (\S+) port", log)))

    before = jump.log.read_text()
    assert lab.run(book).returncode == 0
    by_engine = recorded(lab)
    assert by_engine == {"local": [], **{n.address: [["docker", "ps"]] for n in nodes}}
    out = export(lab, book)
    inventory = load((out / "inventory.yml").read_text())["all"]["hosts"]
    proxy = f"ProxyCommand='ssh -W %h:%p -p {jump.port} -i {jump.client_key}"
    assert all(proxy in inventory[n.address]["ansible_ssh_common_args"] for n in nodes)
    jump.log.write_text(before)
    done = ansible_playbook(lab, out)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert recorded(lab) == by_engine
    assert forwarded() == sorted(n.address for n in nodes)  # Ansible went through the jump host


RAW_ENDS = ("{%endraw%}", "{%- endraw %}", "{% endraw -%}", "{% endraw %}")
HOSTILE_STEPS = """\
  - id: here
    title: 'Print a{%endraw%}{{ lookup("pipe", "touch ROOT/pwned-title") }}'
    confirm: {type: "{{ m2 }}"}
    expect: {stdout_matches: 'a\\{\\%endraw\\%\\}\\{\\{ lookup\\("pipe", "touch '}  # braces in expect: escaped
    result: "{{ m4 }}"
    run: printf '%s\\n' {{ m1 }} {{ m2 }} {{ m3 }} {{ m4 }} | tee "$HOME/values.txt"
  - id: there
    title: Print on the node
    on: nodes
    env: {M: "{{ m3 }}"}
    run: printf '%s\\n' {{ m1 }} "$M" > "$HOME/values.txt"
"""


def hostile(root: Path, name: str, end: str) -> str:
    """A value that ends a `{% raw %}` block its own way, then asks the controller to create `root/name`."""
    return f'a{end}{{{{ lookup("pipe", "touch {root}/{name}") }}}}{{%raw%}}$(touch {root}/{name}-sh)"'


def test_no_value_becomes_code_on_the_controller(lab: Lab, nodes: list[SSHDNode], tmp_path: Path) -> None:
    """Every way Jinja ends a raw block, in a title, a warning, a confirmation, an expectation, a result, an
    env value and a script: the playbook prints each value as it is, and Ansible runs none of them."""
    variables = "".join(f"  m{n}: {{type: string, required: true}}\n" for n in range(1, 5))
    steps = HOSTILE_STEPS.replace("ROOT", str(lab.root))
    text = nodes_runbook("hostile", steps, nodes[:1], variables)
    book = write_runbook(tmp_path, text.replace("targets:", "warnings: ['Careful with {{ m1 }}']\ntargets:"))
    values = [hostile(lab.root, f"pwned{n}", end) for n, end in enumerate(RAW_ENDS, 1)]
    out = export(lab, book, *(f"--var=m{n}={v}" for n, v in enumerate(values, 1)))
    done = ansible_playbook(lab, out, *ANSWERS)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert sorted(p.name for p in lab.root.glob("pwned*")) == []  # nothing ran on the controller
    assert (lab.home / "values.txt").read_text().splitlines() == values  # each value arrived as it was
    assert (nodes[0].home / "values.txt").read_text().splitlines() == [values[0], values[2]]
    title = f'TASK [Print a{{%endraw%}}{{{{ lookup("pipe", "touch {lab.root}/pwned-title") }}}} (here)]'
    assert title in done.stdout and json.dumps(values[3]) in done.stdout  # the title, the result


HOSTILE_CLUSTER = """\
nodes:
  - address: 127.0.0.2
    user: 'root{{ lookup("pipe", "touch ROOT/pwned-user") }}'
    port: 22
    ssh_key_path: '/nokey{%endraw%}{{ lookup("pipe", "touch ROOT/pwned-key") }}'
"""


def test_no_inventory_field_becomes_code_on_the_controller(
    lab: Lab, nodes: list[SSHDNode], tmp_path: Path
) -> None:
    """A cluster file's user and key path reach ssh as they were written (the host cannot be reached with
    them: ssh is told exactly that user), and Ansible runs none of them."""
    cluster = lab.root / "cluster.yml"
    cluster.write_text(HOSTILE_CLUSTER.replace("ROOT", str(lab.root)))
    book = write_runbook(
        tmp_path, nodes_runbook("inventory", "  - {id: a, title: A, on: nodes, run: date}\n")
    )
    out = export(lab, book, f"--var=cluster={cluster}")
    done = ansible_playbook(lab, out, "-vvv")
    assert done.returncode != 0  # unreachable: no such user
    assert sorted(p.name for p in lab.root.glob("pwned*")) == []
    user = 'root{{ lookup("pipe", "touch ' + str(lab.root) + '/pwned-user") }}'
    assert f"ESTABLISH SSH CONNECTION FOR USER: {user}" in done.stdout
    assert '/nokey{%endraw%}{{ lookup("pipe"' in done.stdout  # the key path, given to ssh as it is


SAMPLED = "Zq9-s3cr3t"  # the part of the secret no quoting changes: what the `ps` samples must never show
SECRET_AS_DATA_STEPS = """\
  - id: here
    title: Use the token here
    when: mode == 'go'
    env: {TOKEN: "{{ token }}", PLAIN: "{{ mode }} $(touch ROOT/executed-env)"}
    run: |
      printf '%s' "$TOKEN" > "$HOME/env-token.txt"
      printf '%s' {{ token }} > "$HOME/ref-token.txt"
      printf '%s' "$PLAIN" > "$HOME/plain.txt"
      sleep 1.25
  - id: there
    title: Use the token on the node
    on: nodes
    env: {TOKEN: "{{ token }}"}
    run: |
      printf '%s' "$TOKEN" > "$HOME/env-token.txt"
      printf '%s' {{ token }} > "$HOME/ref-token.txt"
      sleep 1.25
"""


class CommandLines:
    """Every process's whole command line (`ps -eww -o args`) every 50 ms while the block runs, here and so on
    the nodes (they are on 127.0.0.x); bounded by a sample count."""

    def __init__(self, limit: int = 6000) -> None:
        self.samples: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(limit,), daemon=True)

    def _sample(self, limit: int) -> None:
        for _ in range(limit):
            if self._stop.wait(0.05):
                return
            self.samples.append(command_lines())

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.mark.parametrize("pipelining", ["True", "False"])
def test_a_secret_is_given_to_the_script_as_data_and_is_in_no_command_line(
    lab: Lab, nodes: list[SSHDNode], tmp_path: Path, pipelining: str
) -> None:
    """A secret with `$(…)`, quotes and backquotes, and an env value with `$(…)`: they arrive as written, nothing
    in them runs, and no process on the controller or the node has the secret in its argv at any time, with
    Ansible's pipelining (the module on python's stdin) and without (the module copied as a file). The
    export itself needs no secret, even with a `when:`."""
    jinja = f'{{{{ lookup("pipe", "touch {lab.root}/executed-jinja") }}}}{{%endraw%}}'
    secret = (
        f"{SAMPLED} $(touch {lab.root}/executed) \"dq\" 'sq' `touch {lab.root}/executed-bq` $TOKEN {jinja}"
    )
    variables = "  token: {type: string, secret: true, required: true}\n  mode: {type: string, default: go}\n"
    steps = SECRET_AS_DATA_STEPS.replace("ROOT", str(lab.root))
    book = write_runbook(tmp_path, nodes_runbook("secret-data", steps, nodes[:1], variables))
    out = export(lab, book)  # no RUNBOOK_VAR_TOKEN: exit 0, not a KeyError
    with CommandLines() as seen:
        done = ansible_playbook(lab, out, env={"RUNBOOK_VAR_TOKEN": secret, "ANSIBLE_PIPELINING": pipelining})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert any("sleep 1.25" in sample for sample in seen.samples)  # sampled while the scripts ran
    assert [s for s in seen.samples if SAMPLED in s] == []
    for home in (lab.home, nodes[0].home):
        assert (home / "env-token.txt").read_text() == secret
        assert (home / "ref-token.txt").read_text() == secret
    assert (lab.home / "plain.txt").read_text() == f"go $(touch {lab.root}/executed-env)"
    assert sorted(p.name for p in lab.root.glob("executed*")) == []
    assert SAMPLED not in done.stdout + done.stderr


ROLLING = """\
  - id: upgrade
    title: Restart node by node
    on: nodes
    serial: 1
    steps:
      - id: drain
        title: Drain
        on: local
        run: kubectl drain {{ batch[0].name }}
      - id: restart
        title: Restart
        run: docker restart {{ host.name }}
      - id: uncordon
        title: Uncordon
        on: local
        run: kubectl uncordon {{ batch[0].name }}
"""


def argvs(seen: dict[str, Any]) -> dict[str, Any]:
    """What the stand-ins saw, without the local commands' working directory."""
    return {**seen, "local": [argv for argv, _ in seen["local"]]}


def test_an_exported_rolling_group_rolls_batch_by_batch_and_stops_where_the_engine_does(
    lab: Lab, nodes: list[SSHDNode]
) -> None:
    local_stand_in(lab.bin_dir, "kubectl", lab.calls_log)
    runbook = write_runbook(lab.root, nodes_runbook("rolling", ROLLING, nodes))
    code, by_engine = engine_run(lab, runbook)
    assert code == 0
    out = export(lab, runbook)
    done = ansible_playbook(lab, out, *ANSWERS)
    assert done.returncode == 0, done.stdout + done.stderr
    by_ansible = recorded(lab)
    assert argvs(by_ansible) == argvs(by_engine)  # local commands run in the playbook's directory there
    order = [" ".join(argv[1:]) for argv, _ in by_ansible["local"]]
    assert order == [f"{verb} {n.address}" for n in nodes for verb in ("drain", "uncordon")]
    assert all(by_ansible[n.address] == [["docker", "restart", n.address]] for n in nodes)

    docker_on(nodes, failing=nodes[1].address)  # the second batch fails: the third is untouched by both
    code, by_engine = engine_run(lab, runbook)
    assert code == 1
    failed = ansible_playbook(lab, export(lab, runbook), *ANSWERS)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    by_ansible = recorded(lab)
    assert argvs(by_ansible) == argvs(by_engine)
    assert by_ansible[nodes[2].address] == []
    assert [" ".join(argv[1:]) for argv, _ in by_ansible["local"]][-1] == f"drain {nodes[1].address}"
