"""`runbook export ansible` in process: the mapping of each runbook field, refusals, `--lossy`, secrets.

The playbook is read back with PyYAML and checked as data; `test_export_ansible_e2e.py` runs it for real.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.commands import export as command
from engine.commands.export import ExportOptions, ExportRunbook, Kind
from engine.errors import InvalidRunbook
from engine.export import unmapped
from engine.export.ansible_tasks import literal
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


def tasks(playbook: str) -> dict[str, dict[str, Any]]:
    """Every task (blocks flattened) by name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for task in items:
            found[task["name"]] = task
            walk(task.get("block", []) + task.get("rescue", []))

    for play in yaml.safe_load(playbook):
        walk(play["tasks"])
    return found


def test_each_field_maps_to_its_ansible_keyword(tmp_path: Path) -> None:
    playbook, inventory = export(tmp_path, BOOK, RUNBOOK_VAR_TOKEN=SECRET)
    found = tasks(playbook)
    work = found["Work here (local-work)"]
    assert work["ansible.builtin.command"] == {
        "argv": ["sh", "-ec", './work --mode "$MODE"'],
        "chdir": "/srv",
    }
    assert work["environment"] == {
        "MODE": "fast",
        "TOKEN": "{{ lookup('ansible.builtin.env', 'RUNBOOK_VAR_TOKEN') }}",
    }
    assert work["no_log"] is True and work["timeout"] == 90 and work["ignore_errors"] is True
    assert (work["until"], work["retries"], work["delay"]) == ("runbook_result is not failed", 2, 5)
    assert work["failed_when"] == ('runbook_result.rc not in [0, 3] or "done" not in runbook_result.stdout')
    assert work["when"] == "inventory_hostname == 'localhost'"
    web = found["Work on the web hosts (web-work) (Linux)"]
    assert web["throttle"] == 2 and web["when"] == [
        "inventory_hostname in groups['web']",
        'ansible_system == "Linux"',
    ]
    assert found["Work on the web hosts (web-work) (Other)"]["when"][1] == "ansible_system not in ['Linux']"
    assert (
        "runbook_yes"
        in found["Work on the web hosts (web-work): go on only if confirmed"]["ansible.builtin.assert"][
            "that"
        ]
    )
    assert (
        '== "mapped"'
        in found["Work on the web hosts (web-work): go on only if confirmed"]["ansible.builtin.assert"][
            "that"
        ]
    )
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
    hosts = yaml.safe_load(inventory)["all"]
    assert hosts["hosts"]["web1"] == {
        "ansible_host": "web1",
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "ansible_python_interpreter": "auto_silent",
    }
    assert hosts["children"]["web"]["hosts"] == {"web1": None, "web2": None}
    assert SECRET not in playbook + inventory
    [play_one, play_two] = yaml.safe_load(playbook)
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
    data = yaml.safe_load(inventory)["all"]
    assert data["hosts"]["10.0.0.1"]["ansible_ssh_private_key_file"] == "/keys/id"
    assert data["hosts"]["10.0.0.1"]["ansible_user"] == "rke"
    assert data["hosts"]["10.0.0.2"]["ansible_port"] == 22 and "ansible_user" not in data["hosts"]["10.0.0.2"]
    assert list(data["children"]) == ["node_set"]  # Ansible group names are identifiers
    task = tasks(playbook)["A (a)"]
    assert (
        task["ansible.builtin.command"]["argv"][2] == "{% raw %}docker ps --format '{{.Names}}'{% endraw %}"
    )


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


def test_literal_keeps_template_marks_from_ansible() -> None:
    assert literal("echo plain") == "echo plain"
    assert literal("a {{ b }} {% endraw %}") == (
        "{% raw %}a {{ b }} {% endraw %}{{ '{% endraw %}' }}{% raw %}{% endraw %}"
    )


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
    assert first["ansible.builtin.command"]["argv"][2] == "date a"
    assert second["ansible.builtin.command"]["argv"][2] == "date b"


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
    hosts = yaml.safe_load(export(tmp_path, plain)[1])["all"]["hosts"]
    assert hosts["web1"]["ansible_ssh_common_args"] == "-o ProxyJump=admin@bastion:2222,inner"
    keyed = KEYED.replace("KEYS", "jump: {host: bastion, user: admin, key_file: /keys/bastion}")
    hosts = yaml.safe_load(export(tmp_path, keyed)[1])["all"]["hosts"]
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
    assert found["Say it (inner/say)"]["ansible.builtin.command"]["argv"][2] == "echo hello"
    assert (
        "From the used runbook."
        in found["Show the warnings and ask to go on"]["ansible.builtin.pause"]["prompt"]
    )
    assert "Check: (inner) Check it" in found
    write_runbook(tmp_path, used.replace("required: true}", "required: true, secret: true}"), "used.yml")
    with pytest.raises(InvalidRunbook) as refused:
        export(tmp_path, using.replace("word: hello", "word: hello-hello-hello"))
    assert f"{tmp_path / 'used.yml'}:7:3: variables.word: a used runbook's secret" in str(refused.value)
