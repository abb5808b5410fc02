"""`runbook export ansible` in process: the mapping of each runbook field, refusals, `--lossy`, secrets.

The playbook is read back with PyYAML and checked as data; `test_export_ansible_e2e.py` runs it for real.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.commands import export as command
from engine.commands.export import ExportOptions, ExportRunbook, Kind
from engine.errors import InvalidRunbook
from engine.export import unmapped
from engine.export.yamltext import Unsafe, data, dump
from engine.model import Step
from engine.options import Options, prepare
from runbooks import cli, cli_env, write_runbook

SECRET = "hunter2-hunter2-xyz"

BOOK = """\
runbook: 1
name: mapped
version: "1.0"
title: every mapped field
warnings: [Careful.]
variables:
  token: {type: string, secret: true, required: true}
  flag: {type: boolean, default: false}
targets:
  web:
    ssh:
      hosts: [deploy@web1:2222, web2]
    concurrency: 2
checks:
  - title: the web hosts answer
    on: web
    run: uptime
steps:
  - id: local-work
    title: Work here
    cwd: /srv
    env: {MODE: fast, TOKEN: "{{ token }}"}
    timeout: 90s
    retries: {count: 2, delay: 5s}
    expect: {exit_code: [0, 3], stdout_contains: done}
    continue_on_error: true
    run: ./work --mode "$MODE"
  - id: web-work
    title: work on the web hosts
    on: web
    max_failed_hosts: 1
    confirm: {type: "{{ runbook.name }}"}
    run:
      linux: systemctl restart web
      default: echo unsupported; exit 1
  - id: never
    title: Only when flagged
    when: flag
    run: echo flagged
  - id: look
    title: Look at the site
    manual: Open the home page.
    record: {prompt: Release shown, expect: {matches: '^r[0-9]+$'}}
"""


def export(tmp_path: Path, text: str, lossy: bool = False, **environ: str) -> tuple[str, str]:
    book = write_runbook(tmp_path, text)
    out = tmp_path / "out"
    command.main(
        ExportOptions(kind=Kind.ANSIBLE, output=str(out)),
        ExportRunbook(str(book), environ=environ, lossy=lossy),
    )
    return (out / "playbook.yml").read_text(), (out / "inventory.yml").read_text()


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with Ansible's `!unsafe` tag: such a string is read as `Unsafe`."""


Loader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # a SafeLoader with one more tag


def script(task: dict[str, Any]) -> str:
    """The script a command task runs: its stdin ends with it, the task var `runbook_script`."""
    assert task["ansible.builtin.command"]["argv"] == ["sh", "-ec", 'eval "$(cat)"']
    assert task["ansible.builtin.command"]["stdin"].endswith("{{ runbook_script }}")
    text: str = task["vars"]["runbook_script"]
    return text


def tasks(playbook: str) -> dict[str, dict[str, Any]]:
    """Every task (blocks flattened) by name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for task in items:
            found[task["name"]] = task
            walk(task.get("block", []) + task.get("rescue", []))

    for play in load(playbook):
        walk(play["tasks"])
    return found


def test_each_field_maps_to_its_ansible_keyword(tmp_path: Path) -> None:
    playbook, inventory = export(tmp_path, BOOK, RUNBOOK_VAR_TOKEN=SECRET)
    found = tasks(playbook)
    work = found["Work here (local-work)"]
    assert work["ansible.builtin.command"] == {
        "argv": ["sh", "-ec", 'eval "$(cat)"'],
        "stdin": "export TOKEN={{ lookup('ansible.builtin.env', 'RUNBOOK_VAR_TOKEN') | quote }}\n"
        "{{ runbook_script }}",
        "expand_argument_vars": False,
        "chdir": "/srv",
    }
    assert script(work) == 'export MODE=fast\n./work --mode "$MODE"'
    assert "environment" not in work  # Ansible's would put the values on the module's `sh -c` line
    assert work["no_log"] is True and work["timeout"] == 90 and work["ignore_errors"] is True
    assert (work["until"], work["retries"], work["delay"]) == ("runbook_result is not failed", 2, 5)
    assert work["failed_when"] == (
        "runbook_result.rc not in [0, 3] or runbook_expected_stdout not in runbook_result.stdout"
    )
    assert work["vars"]["runbook_expected_stdout"] == "done"
    assert work["when"] == "inventory_hostname == 'localhost'"
    web = found["Work on the web hosts (web-work) (Linux)"]
    assert web["throttle"] == 2 and web["when"] == [
        "inventory_hostname in groups['web']",
        "ansible_system == 'Linux'",
    ]
    assert found["Work on the web hosts (web-work) (Other)"]["when"][1] == "ansible_system not in ['Linux']"
    assert (
        "runbook_yes"
        in found["Work on the web hosts (web-work): go on only if confirmed"]["ansible.builtin.assert"][
            "that"
        ]
    )
    confirmed = found["Work on the web hosts (web-work): go on only if confirmed"]
    assert "== runbook_expected" in confirmed["ansible.builtin.assert"]["that"]
    assert confirmed["vars"] == {"runbook_expected": "mapped"}
    assert (
        found["Work on the web hosts (web-work): go on without the failed host"]["ansible.builtin.meta"]
        == "end_host"
    )
    assert (
        "<= 1"
        in found["Work on the web hosts (web-work): no more than max_failed_hosts=1 failed"][
            "ansible.builtin.assert"
        ]["that"]
    )
    assert "echo flagged" not in playbook  # `when: flag` is false: evaluated now, as the plan does
    assert found["Only when flagged (never): skipped on localhost"]["ansible.builtin.debug"]["msg"] == (
        "when: flag is false"
    )
    assert "is match(" in found["Look at the site (look): check the answer"]["ansible.builtin.assert"]["that"]
    assert found["Check: The web hosts answer"]["changed_when"] is False
    hosts = load(inventory)["all"]
    assert hosts["hosts"]["web1"] == {
        "ansible_host": "web1",
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "ansible_python_interpreter": "auto_silent",
    }
    assert hosts["children"]["web"]["hosts"] == {"web1": None, "web2": None}
    assert SECRET not in playbook + inventory
    [play_one, play_two] = load(playbook)
    assert play_one["any_errors_fatal"] is True and play_two["hosts"] == "all"


def test_an_inventory_file_is_expanded_with_user_port_and_key(tmp_path: Path) -> None:
    (tmp_path / "cluster.yml").write_text(
        "nodes:\n  - {address: 10.0.0.1, user: rke, port: 2200, ssh_key_path: /keys/id}\n  - {address: 10.0.0.2}\n"
    )
    text = f"""\
runbook: 1
name: inv
version: "1"
title: t
targets:
  node-set:
    ssh:
      from_file: {tmp_path}/cluster.yml
      each: nodes
      host: "{{{{ item.address }}}}"
      user: "{{{{ item.user | default(omit) }}}}"
      port: "{{{{ item.port | default(22) }}}}"
      key_file: "{{{{ item.ssh_key_path | default(omit) }}}}"
steps:
  - {{id: a, title: A, on: node-set, run: "docker ps --format '{{% raw %}}{{{{.Names}}}}{{% endraw %}}'"}}
"""
    playbook, inventory = export(tmp_path, text)
    data = load(inventory)["all"]
    assert data["hosts"]["10.0.0.1"]["ansible_ssh_private_key_file"] == "/keys/id"
    assert data["hosts"]["10.0.0.1"]["ansible_user"] == "rke"
    assert data["hosts"]["10.0.0.2"]["ansible_port"] == 22 and "ansible_user" not in data["hosts"]["10.0.0.2"]
    assert list(data["children"]) == ["node_set"]  # Ansible group names are identifiers
    task = tasks(playbook)["A (a)"]
    assert script(task) == "docker ps --format '{{.Names}}'"
    assert isinstance(script(task), Unsafe)


RUN_TIME = """\
runbook: 1
name: deferred
version: "1"
title: t
steps:
  - id: probe
    title: Probe
    run: echo hi
  - id: after
    title: After
    when: steps.probe.exit_code != 0
    run: echo {{ steps.probe.stdout }}
"""


def test_what_cannot_be_expressed_is_refused_with_its_place(tmp_path: Path) -> None:
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, RUN_TIME)
    lines = [str(p) for p in refused.value.problems]
    book = tmp_path / "book.yml"
    assert lines[0].startswith(f"{book}:11:5: steps[1].when: uses a value known only while running")
    assert lines[1].startswith(f"{book}:12:5: steps[1].run: uses a value known only while running")
    assert "--lossy" in lines[-1]
    assert not (tmp_path / "out").exists()  # nothing written


def test_lossy_writes_a_comment_at_each_place(tmp_path: Path) -> None:
    playbook, _ = export(tmp_path, RUN_TIME, lossy=True)
    assert "# LOSSY steps[1].when: uses a value known only while running" in playbook
    assert "Not expressed (exported with --lossy" in playbook
    [step] = [line for line in playbook.splitlines() if "# step 2: after" in line]
    assert playbook.index(step) < playbook.index("# LOSSY steps[1].when")


def test_a_field_the_export_does_not_map_is_refused_by_name(tmp_path: Path) -> None:
    """A step key added later (here a stand-in `future_key`) is refused until the export maps it."""
    book = write_runbook(
        tmp_path,
        RUN_TIME.replace("    when: steps.probe.exit_code != 0\n", "").replace(
            "echo {{ steps.probe.stdout }}", "echo x"
        ),
    )
    _, plan = prepare(Options(str(book)), any_platform=True, secrets_later=True)
    assert unmapped.find(plan) == []
    looping = dataclasses.make_dataclass(
        "FutureStep", [("future_key", Any, dataclasses.field(default=None))], bases=(Step,), frozen=True
    )
    step = looping(
        **{f.name: getattr(plan.steps[1].step, f.name) for f in dataclasses.fields(Step)}, future_key=["a"]
    )
    changed = dataclasses.replace(plan, steps=(plan.steps[0], dataclasses.replace(plan.steps[1], step=step)))
    [place] = unmapped.find(changed)
    assert place.step == "after" and "'future_key' has no Ansible equivalent" in str(place.problem)


def test_data_is_written_with_the_unsafe_tag_whatever_it_holds() -> None:
    """Replaces the `{% raw %}` escaping, which `{%endraw%}` and its variants ended."""
    value = {"msg": "a{%endraw%}{{ x }}{%- endraw %}", "lines": ["one\ntwo\n", "{% endraw -%}"], "n": 3}
    text = dump(data(value))
    assert text.count("!unsafe") == 3
    loaded = load(text)
    assert loaded == value and all(isinstance(v, Unsafe) for v in [loaded["msg"], *loaded["lines"]])


def test_cli_refuses_with_exit_2_and_every_place(tmp_path: Path, home: Path) -> None:
    book = write_runbook(tmp_path, RUN_TIME)
    done = subprocess.run(
        cli("export", "ansible", book, "-o", tmp_path / "out"),
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{book}:11:5: steps[1].when" in done.stderr and "cannot be exported to Ansible" in done.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem (tmpfs; the tests run as root): a full disk, not a mock."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount], check=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", mount], check=True, timeout=30)


def test_a_full_disk_is_a_clean_error_and_leaves_the_earlier_export(
    tmp_path: Path, home: Path, tiny_disk: Path
) -> None:
    book = write_runbook(tmp_path, BOOK.replace("token: {type: string, secret: true, required: true}\n", ""))
    book.write_text(book.read_text().replace('TOKEN: "{{ token }}"', "TOKEN: plain"))

    def export_to_tiny(*args: str) -> subprocess.CompletedProcess[str]:
        argv = cli("export", "ansible", book, "-o", tiny_disk / "out", *args)
        return subprocess.run(argv, env=cli_env(home), capture_output=True, text=True, timeout=60)

    assert export_to_tiny().returncode == 0
    before = {p.name: p.read_text() for p in (tiny_disk / "out").iterdir()}
    free = os.statvfs(tiny_disk)
    (tiny_disk / "filler").write_bytes(b"x" * (free.f_bavail * free.f_frsize))  # the disk is full now
    longer = "\n".join(f"echo line {n} of a long script" for n in range(400))  # more pages than before
    book.write_text(
        book.read_text() + f"  - id: long\n    title: Long\n    run: |\n{textwrap.indent(longer, '      ')}\n"
    )
    done = export_to_tiny()
    assert done.returncode == 73, done.stdout + done.stderr  # EX_CANTCREAT, not 70 with a traceback
    assert "No space left on device; no file was changed" in done.stderr and "Traceback" not in done.stderr
    assert {p.name: p.read_text() for p in (tiny_disk / "out").iterdir()} == before  # no temporary left


WAITING = """\
runbook: 1
name: waiting
version: "1"
title: t
targets:
  web: {ssh: {hosts: [web1, web2]}}
steps:
  - id: once
    title: Once
    on: web
    run_once: true
    run: date
  - id: wait
    title: Wait
    on: web
    retries: 3
    until: (result.stdout | from_json).status == 'ok'
    run: curl -s localhost/health
"""


def test_run_once_and_until_map_to_a_host_choice_and_until(tmp_path: Path) -> None:
    found = tasks(export(tmp_path, WAITING)[0])
    once = found["Once (once)"]["when"]
    assert (
        once[1]
        == "inventory_hostname == (['web1', 'web2'] | select('in', ansible_play_hosts) | first | default(''))"
    )
    wait = found["Wait (wait)"]
    assert wait["until"] == "runbook_result is not failed and ((result.stdout | from_json).status == 'ok')"
    assert (
        wait["retries"] == 3
        and wait["vars"]["result"]["exit_code"] == "{{ runbook_result.rc | default(None) }}"
    )


def test_deadline_and_an_until_over_other_names_are_refused(tmp_path: Path) -> None:
    text = WAITING.replace("    retries: 3\n", "    retries: 3\n    deadline: 5m\n").replace(
        "status == 'ok'", "status == host.name"
    )
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, text)
    lines = [str(p) for p in refused.value.problems]
    assert "steps[1].deadline: 'deadline' has no Ansible equivalent" in lines[0]
    assert "steps[1].until: until reads host: the export maps an until over `result` only" in lines[1]


def test_a_loop_is_one_task_per_item_in_the_plans_order(tmp_path: Path) -> None:
    text = WAITING.replace(
        "    run_once: true\n    run: date\n", "    loop: [a, b]\n    run: date {{ item }}\n"
    )
    found = tasks(export(tmp_path, text)[0])
    first, second = found["Once (item 1/2: a) (once[1])"], found["Once (item 2/2: b) (once[2])"]
    assert (script(first), script(second)) == ("date a", "date b")


def test_rules_are_checked_at_export_and_a_rule_over_a_secret_is_refused(tmp_path: Path) -> None:
    rules = (
        "variables:\n  n: {type: integer, default: 1}\n  token: {type: string, secret: true}\n"
        "rules:\n  - {assert: n > 0, message: n must be positive}\n"
    )
    text = WAITING.replace("targets:\n", rules + "targets:\n")
    assert "Once (once)" in tasks(export(tmp_path, text)[0])
    with pytest.raises(InvalidRunbook) as broken:
        export(tmp_path, text.replace("default: 1", "default: 0"))
    assert "n must be positive" in str(broken.value)
    with pytest.raises(InvalidRunbook) as secret:
        export(tmp_path, text.replace("n > 0", "n > 0 and token"))
    assert "the rule reads the secret token" in str(secret.value)


def test_a_when_on_an_ssh_hosts_platform_is_decided_on_the_host(tmp_path: Path) -> None:
    text = WAITING.replace(
        "    run_once: true\n", "    when: platform == 'linux' and runbook.name == 'waiting'\n"
    )
    once = tasks(export(tmp_path, text)[0])["Once (once)"]
    assert once["when"] == [
        "inventory_hostname in groups['web']",
        "platform == 'linux' and runbook.name == 'waiting'",
    ]
    assert once["vars"]["platform"].startswith("{{ {'Linux': 'linux'")
    assert once["vars"]["runbook"] == {"name": "waiting", "version": "1"}
    with pytest.raises(InvalidRunbook) as refused:  # `host` is not passed along: refused, not guessed
        export(tmp_path, text.replace("runbook.name == 'waiting'", "host.name == 'web1'"))
    assert "steps[0].when: uses a value known only while running" in str(refused.value)


KEYED = """\
runbook: 1
name: keyed
version: "1"
title: t
targets:
  web:
    ssh:
      hosts: [web1]
      KEYS
steps:
  - {id: a, title: A, on: web, run: date}
"""


def test_jump_hosts_become_ssh_options_and_an_inline_key_is_never_written(tmp_path: Path) -> None:
    plain = KEYED.replace("KEYS", "jump: admin@bastion:2222,inner")
    hosts = load(export(tmp_path, plain)[1])["all"]["hosts"]
    assert hosts["web1"]["ansible_ssh_common_args"] == "-o ProxyJump=admin@bastion:2222,inner"
    keyed = KEYED.replace("KEYS", "jump: {host: bastion, user: admin, key_file: /keys/bastion}")
    hosts = load(export(tmp_path, keyed)[1])["all"]["hosts"]
    assert hosts["web1"]["ansible_ssh_common_args"] == (
        "-o ProxyCommand='ssh -W %h:%p -i /keys/bastion -o IdentitiesOnly=yes admin@bastion'"
    )
    inline = "key: |\n        -----BEGIN OPENSSH PRIVATE KEY-----\n        c2VjcmV0LWtleS1ieXRlcw==\n" + (
        "        -----END OPENSSH PRIVATE KEY-----"
    )
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, KEYED.replace("KEYS", inline))
    assert "host web1: 'key' has no Ansible equivalent" in str(refused.value)
    playbook, inventory = export(tmp_path, KEYED.replace("KEYS", inline), lossy=True)
    assert "c2VjcmV0LWtleS1ieXRlcw" not in playbook + inventory


def test_a_used_runbook_is_exported_in_place_and_its_secrets_are_refused(tmp_path: Path) -> None:
    used = """\
runbook: 1
name: used
version: "1"
title: t
warnings: [From the used runbook.]
variables:
  word: {type: string, required: true}
checks:
  - {title: Check it, run: "true"}
steps:
  - {id: say, title: Say it, run: "echo {{ word }}"}
"""
    write_runbook(tmp_path, used, "used.yml")
    using = """\
runbook: 1
name: using
version: "1"
title: t
steps:
  - {id: first, title: First, run: echo one}
  - {id: inner, title: Use it, use: used.yml, with: {word: hello}}
"""
    playbook, _ = export(tmp_path, using)
    found = tasks(playbook)
    assert script(found["Say it (inner/say)"]) == "echo hello"
    assert (
        "From the used runbook."
        in found["Show the warnings and ask to go on"]["ansible.builtin.pause"]["prompt"]
    )
    assert "Check: (inner) Check it" in found
    write_runbook(tmp_path, used.replace("required: true}", "required: true, secret: true}"), "used.yml")
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, using.replace("word: hello", "word: hello-hello-hello"))
    assert f"{tmp_path / 'used.yml'}:7:3: variables.word: a used runbook's secret" in str(refused.value)


FOUR_EYES = """\
runbook: 1
name: fe
version: "1"
title: Four eyes
steps:
  - id: restore
    title: Restore
    run: echo restore
    approval: {required: 2, from: [dba]}
"""


def test_an_approval_is_refused_by_name_and_is_a_pause_with_lossy(tmp_path: Path) -> None:
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, FOUR_EYES)
    problem = refused.value.problems[0]
    assert problem.path == "steps[0].approval" and "'approval' (four eyes) has no Ansible" in problem.message
    assert len(refused.value.problems) == 2, refused.value.problems  # and the summary: not exported
    playbook, _ = export(tmp_path, FOUR_EYES, lossy=True)
    found = tasks(playbook)
    pause = found["Restore (restore): wait for approval (lossy: not proven)"]
    assert "2 other operator(s) must approve" in pause["ansible.builtin.pause"]["prompt"]
    names = list(found)
    assert names.index("Restore (restore): wait for approval (lossy: not proven)") < names.index(
        "Restore (restore)"
    )


def test_no_approval_required_exports_without_a_pause(tmp_path: Path) -> None:
    playbook, _ = export(tmp_path, FOUR_EYES.replace("required: 2", "required: 0"))
    assert "wait for approval" not in playbook and "Restore (restore)" in tasks(playbook)


MARK = "{{M}}"  # Jinja Ansible would evaluate, in every text the runbook, its values or its inventory give
MARKED = """\
runbook: 1
name: marked
version: "1"
title: "title {{M}}"
description: "about {{M}}"
warnings: ["careful {% raw %}{{M}}{% endraw %} {{ v }}"]
variables:
  v: {type: string, default: "{{M}}"}
targets:
  web:
    ssh:
      from_file: CLUSTER
      each: nodes
      host: "{{ item.address }}"
      user: "{{ item.user }}"
      key_file: "{{ item.key }}"
      jump: "{{ item.jump }}"
checks:
  - {title: "check {{M}}", on: web, run: "test -n {{ v }}"}
steps:
  - id: here
    title: "here {{M}}"
    cwd: "/srv/{{ v }}"
    env: {E: "{{ v }}"}
    expect: {stdout_contains: "M", stdout_matches: "xM"}
    result: "got {{ v }}"
    confirm: {type: "{{ v }}"}
    retries: {count: 2, delay: 1s}
    until: "'ok' in result.stdout"
    run: "echo {{ v }}"
  - {id: there, title: there, on: web, when: "platform == 'linux' and v != ''", run: "tool-{{ v }} --x"}
  - {id: once, title: once, on: web, run_once: true, max_failed_hosts: 1, run: "echo {{ v }}"}
  - {id: typed, title: typed, manual: "do {{ v }}", record: {prompt: "seen {{ v }}", expect: "{{ v }}"}}
  - {id: pattern, title: pattern, manual: "do", record: {prompt: "p", expect: {matches: "x{{M}}"}}}
"""
MARKED_CLUSTER = """\
nodes:
  - {address: "10.0.0.1{{M}}", user: "u{{M}}", key: "/keys/{{M}}", jump: "j{{M}}@bastion"}
  - {address: "10.0.0.2", user: "u2", key: "/keys/2", jump: "bastion"}
"""


def test_every_text_from_the_runbook_and_its_inventory_is_ansible_data(tmp_path: Path) -> None:
    """By construction: walk both files; every string holding the runbook's Jinja is `!unsafe`, wherever it
    is (an argument, a name, a task var, a host var); an engine expression never holds it."""
    (tmp_path / "cluster.yml").write_text(MARKED_CLUSTER)
    text = MARKED.replace("CLUSTER", str(tmp_path / "cluster.yml"))
    playbook, inventory = export(tmp_path, text, lossy=True)
    tagged, plain = [], []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            plain.extend(key for key in node if isinstance(key, str) and MARK in key)
            node = list(node.values())
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and MARK in node:
            (tagged if isinstance(node, Unsafe) else plain).append(node)

    walk(load(playbook))
    walk(load(inventory))
    assert plain == []
    assert len(tagged) >= 20  # not vacuous: names, prompts, scripts, vars, host vars
    assert "{{M}}" not in str(load(inventory)["all"]["children"])  # host names there are made safe


def test_a_line_break_yaml_knows_stays_inside_its_comment(tmp_path: Path) -> None:
    """NEL, LS and PS end a YAML comment: a value holding one, listed in the header, must not add a play."""
    (tmp_path / "cluster.yml").write_text(MARKED_CLUSTER)
    text = MARKED.replace("CLUSTER", str(tmp_path / "cluster.yml"))
    for sep in ("\x85", "\u2028", "\u2029"):
        value = f"x{sep}- name: injected{sep}  hosts: all{sep}  tasks: []{sep}"
        playbook, _ = export(tmp_path, text, True, RUNBOOK_VAR_V=value)
        plays = load(playbook)
        assert [play["name"] for play in plays] == ["Before anything runs: title {{M}}", "title {{M}}"]
        assert f"v = x\\u{ord(sep):04x}- name: injected" in playbook.replace("\\x85", "\\u0085")


def test_a_target_run_locally_gives_each_host_its_name_on_stdin(tmp_path: Path) -> None:
    book = write_runbook(
        tmp_path, KEYED.replace("KEYS", "user: deploy").replace("run: date", "run: hostname")
    )
    command.main(
        ExportOptions(kind=Kind.ANSIBLE, output=str(tmp_path / "out")),
        ExportRunbook(str(book), target=("web=local",)),
    )
    task = tasks((tmp_path / "out" / "playbook.yml").read_text())["A (a)"]
    stdin = task["ansible.builtin.command"]["stdin"]
    assert stdin == "export RUNBOOK_HOST={{ runbook_host | quote }}\n{{ runbook_script }}"
    hosts = load((tmp_path / "out" / "inventory.yml").read_text())["all"]["hosts"]
    assert hosts["web1"]["runbook_host"] == "web1" and isinstance(hosts["web1"]["runbook_host"], Unsafe)


def test_a_when_over_a_secret_is_refused_and_other_whens_need_no_secret(tmp_path: Path) -> None:
    """Secrets are not needed to export, even with a `when:` (was: KeyError, exit 70); a `when` that reads
    one cannot be decided at export time (the export has no secret) and is refused, never guessed."""
    secret = "variables:\n  token: {type: string, secret: true, required: true}\ntargets:\n"
    text = WAITING.replace("targets:\n", secret).replace("    run_once: true\n", "    when: 1 > 0\n")
    assert "Once (once)" in tasks(export(tmp_path, text)[0])
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, text.replace("when: 1 > 0", "when: token != ''"))
    assert "steps[0].when: the when reads the secret token, which the export never has" in str(refused.value)
