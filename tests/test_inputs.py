"""Hostile input stays an input error (issue 19, items 8, 9 and 11): a NUL in a value, a template that would
build gigabytes, a step id named like a method — each refused with exit 2 at its `file:line:col`, through the
command line in this process (`Lab.run_here`), never an internal error (exit 70) half-way through a run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.errors import Problem
from engine.loading import NUL_MESSAGE
from engine.model import Variable
from engine.variables import problems_of
from runbooks import Lab, journal, write_runbook

HEAD = 'runbook: 1\nname: inputs\nversion: "1.0"\ntitle: Inputs\n'


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    path = tmp_path / "work"
    path.mkdir()
    return Lab(path, home)


def book(lab: Lab, body: str) -> Path:
    return write_runbook(lab.root, HEAD + body)


# -- item 8: a NUL reaches no command ---------------------------------------------------------------------------

SAY = "variables:\n  message: {default: hello}\nsteps:\n  - id: say\n    title: Say\n    run: echo {{ message }}\n"


def test_a_nul_in_a_vars_file_is_refused_at_its_line(lab: Lab) -> None:
    (lab.root / "vars.yml").write_text('message: "a\\0b"\n')
    done = lab.run_here(book(lab, SAY), "--vars-file", "vars.yml", task="plan")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"vars.yml:1:10: message: {NUL_MESSAGE}" in done.stderr


def test_a_nul_in_a_list_given_on_the_command_line_says_so(lab: Lab) -> None:
    body = (
        "variables:\n  names: {type: array, default: [a]}\nsteps:\n  - id: a\n    title: A\n    run: 'true'\n"
    )
    done = lab.run_here(book(lab, body), "--var", 'names=["a\\0b"]', task="plan")
    assert done.returncode == 2, done.stdout + done.stderr
    assert NUL_MESSAGE in done.stderr, done.stderr


def test_a_typed_value_with_a_nul_is_a_problem_of_the_value() -> None:
    where = Problem("prompt", 0, 0, "message", "")
    found = problems_of(Variable("message", {"type": "string"}), "a\x00b", where)
    assert [p.message for p in found] == [NUL_MESSAGE]


def test_an_output_with_a_nul_read_by_a_later_step_stops_before_that_step_starts(lab: Lab) -> None:
    body = (
        "steps:\n  - id: a\n    title: A\n    run: printf 'a\\0b'\n"
        "  - id: b\n    title: B\n    run: echo {{ steps.a.stdout }}\n"
    )
    done = lab.run_here(book(lab, body), "--yes")
    # issue 23 bug 5: after steps ran, a template failing with the run's values is that step failing
    # (journaled, resumable, exit 1), never an invalid runbook; its command never starts
    assert done.returncode == 1, done.stdout + done.stderr
    reason = f"book.yml:11:10: steps[1].run: the rendered text holds a NUL: {NUL_MESSAGE}"
    records = journal(lab.state)
    assert [(r["type"], r.get("step")) for r in records if r["type"].startswith("step-")] == [
        ("step-start", "a"),
        ("step-end", "a"),
        ("step-start", "b"),
        ("step-end", "b"),
    ]
    assert records[-2]["status"] == "failed" and records[-2]["reason"].endswith(reason)
    assert records[-1]["type"] == "run-end" and records[-1]["exit_code"] == 1


# -- item 9: what a template builds, and a loop's items, are bounded ---------------------------------------------

BIG = """\
variables:
  width: {type: integer, default: 3}
  count: {type: integer, default: 3}
steps:
  - id: pad
    title: Pad
    run: echo {{ 'x' * width }}
  - id: each
    title: Each
    loop: range(count)
    run: echo {{ item }}
"""


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "width=1000000000",
            "book.yml:11:10: steps[0].run: too large: '*' would build 1,000,000,000 characters; a template may "
            "build at most 1,048,576 (MAX_TEXT)",
        ),
        (
            "count=20000",
            "book.yml:14:11: steps[1].loop: a loop runs at most 10,000 items (MAX_ITEMS); this one has more",
        ),
    ],
)
def test_a_value_that_makes_a_template_too_large_is_refused_at_its_line(
    lab: Lab, value: str, problem: str
) -> None:
    path = book(lab, BIG)
    assert lab.run_here(path, task="validate").returncode == 0  # the sizes depend on the values
    done = lab.run_here(path, "--var", value, task="plan")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == f"{path}:{problem.removeprefix('book.yml:')}"


# -- item 11: a step's result has exactly its documented fields -------------------------------------------------

METHOD_NAMES = ("items", "keys", "values", "get", "update", "pop", "rotate")
READER = """\
  - id: rotate
    title: Rotate the certificate
    loop: [etcd, kubelet]
    loop_var: service
    run: echo rotated {{ service }}
"""


def test_step_ids_named_like_methods_and_a_loops_items_are_read_as_documented(lab: Lab) -> None:
    steps = READER + "".join(
        f"  - id: {name}\n    title: Step {name}\n    run: echo {name}-out\n" for name in METHOD_NAMES[:-1]
    )
    reads = " ".join(f"{{{{ steps.{name}.stdout | trim }}}}" for name in METHOD_NAMES)
    reads += " {{ steps.rotate.items[0].stdout | trim }} {{ steps['items'].hosts.local.status }}"
    steps += f"  - id: read\n    title: Read them\n    run: echo {reads}\n"
    path = book(lab, "steps:\n" + steps)
    checked = lab.run_here(path, task="validate")
    assert checked.returncode == 0, checked.stderr
    done = lab.run_here(path, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    log = next(lab.state.glob("runs/*/read@local.log")).read_text()
    words = " ".join(line.split(" ", 2)[-1].strip() for line in log.splitlines())
    expected = [f"{name}-out" for name in METHOD_NAMES[:-1]]
    assert words == " ".join([*expected, "rotated kubelet", "rotated etcd", "ok"])


@pytest.mark.parametrize(
    ("read", "problem"),
    [
        ("steps.a.stdot", "steps.a.stdot: a step's result has no 'stdot'; did you mean 'stdout'?"),
        (
            "steps.a.items[0].exit_cod",
            "steps.a.items[0].exit_cod: a step's result has no 'exit_cod'; did you mean 'exit_code'?",
        ),
        (
            "steps.a.hosts.local.stat",
            "steps.a.hosts.local.stat: a host's result has no 'stat'; did you mean 'status'?",
        ),
        (
            "steps['a']['get']",
            "steps['a']['get']: a step's result has no 'get'; it has exit_code, hosts, items, "
            "status, stderr, stdout",
        ),
    ],
)
def test_validate_refuses_a_field_a_step_result_does_not_have(lab: Lab, read: str, problem: str) -> None:
    steps = (
        f"  - id: a\n    title: A\n    run: 'true'\n  - id: b\n    title: B\n    run: echo {{{{ {read} }}}}\n"
    )
    done = lab.run_here(book(lab, "steps:\n" + steps), task="validate")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == f"{lab.root / 'book.yml'}:11:10: steps[1].run: {problem}"


def test_an_until_reads_only_the_fields_of_an_attempt(lab: Lab) -> None:
    steps = "  - id: a\n    title: A\n    run: 'true'\n    until: result.stdout and result.exit_cod == 0\n"
    done = lab.run_here(book(lab, "steps:\n" + steps), task="validate")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "steps[0].until: result.exit_cod: an attempt's result has no 'exit_cod'" in done.stderr


# -- item 13: the README's own examples: a rule over `platform`, an inventory key_file ---------------------------

PLATFORM_RULE = """\
variables:
  replicas: {type: integer, default: 3}
rules:
  - assert: replicas <= 1 or platform == 'linux'
    message: Several replicas are only supported on Linux.
steps:
  - id: a
    title: A
    run: echo {{ replicas }}
"""


@pytest.mark.parametrize("task", ["plan", "checklist", "export"])
def test_a_rule_over_platform_reads_this_machines_platform_or_the_one_given(lab: Lab, task: str) -> None:
    path = book(lab, PLATFORM_RULE)
    args: tuple[str, ...] = (
        ("ansible", str(path), "-o", str(lab.root / "out")) if task == "export" else (str(path),)
    )
    done = lab.run_here(*args, task=task)
    assert done.returncode == 0, done.stdout + done.stderr  # this machine (the tests run on Linux)
    refused = lab.run_here(*args, "--platform", "darwin", task=task)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "rules[0].assert: Several replicas are only supported on Linux." in refused.stderr


INVENTORY = """\
targets:
  nodes:
    ssh:
      from_file: cluster.yml
      each: nodes
      host: "{{ item.address }}"
      user: "{{ item.user }}"
      # the entry's own key, else the one written once for the whole file, else ~/.ssh/id_rsa
      key_file: "{{ item.ssh_key_path or inventory.ssh_key_path | default('~/.ssh/id_rsa', true) }}"
      agent: no
steps:
  - id: a
    title: A
    on: nodes
    run: 'true'
"""


@pytest.mark.parametrize(
    ("file_wide", "default_key"), [("", "/.ssh/id_rsa"), ("ssh_key_path: /k/all\n", "/k/all")]
)
def test_the_readmes_key_file_falls_back_for_entries_without_their_own_key(
    lab: Lab, file_wide: str, default_key: str
) -> None:
    nodes = (
        "nodes:\n  - {address: 10.0.0.11, user: u}\n  - {address: 10.0.0.12, user: u, ssh_key_path: /k/own}\n"
    )
    (lab.root / "cluster.yml").write_text(file_wide + nodes)
    done = lab.run_here(book(lab, INVENTORY), "--format", "json", task="plan")
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = (host["reach"] for host in json.loads(done.stdout)["steps"][0]["hosts"])
    assert re.fullmatch(
        rf"ssh u@10\.0\.0\.11 \(port from ~/\.ssh/config\), key \S*{re.escape(default_key)}", first
    )
    assert second == "ssh u@10.0.0.12 (port from ~/.ssh/config), key /k/own"


def test_a_key_an_entry_lacks_is_still_an_error_where_its_value_is_used(lab: Lab) -> None:
    (lab.root / "cluster.yml").write_text("nodes:\n  - {address: 10.0.0.11}\n")
    done = lab.run_here(book(lab, INVENTORY), task="plan")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "entry 0 of 'nodes': undefined: 'dict object' has no attribute 'user'" in done.stderr


def test_a_loop_expression_that_builds_too_many_items_says_so(lab: Lab) -> None:
    body = (
        "variables:\n  n: {type: integer, default: 3}\nsteps:\n  - id: a\n    title: A\n    loop: '[0] * n'\n"
    )
    done = lab.run_here(book(lab, body + "    run: echo {{ item }}\n"), "--var", "n=1000000", task="plan")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[0].endswith(
        "book.yml:10:11: steps[0].loop: too large: '*' would build 1,000,000 items; a template may build at most "
        "10,000 (MAX_ITEMS)"
    )
