"""Acceptance tests of `invoke validate`: one malformed runbook per case, through the real command line.

Each case asserts exit code 2 and the exact `file:line:col: path: message` lines printed, in order, and that
no traceback reaches the user. The cases run the command line in this process (`runbooks.in_process`: loading,
schema, building, linting and the error handler, without ~0.25 s of interpreter start-up each); the shipped
runbook is validated by a process of its own, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.loading import NUL_MESSAGE
from runbooks import in_process

ROOT = Path(__file__).resolve().parent.parent
DATA = "tests/data/malformed"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def problems(self) -> list[str]:
        """The problem lines, without the "N problems found" summary."""
        return [line for line in self.stderr.splitlines() if not line.endswith(" found")]


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env["HOME"] = str(home)
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# file → the exact problem lines `validate` must print (path relative to the repository root, as typed)
CASES: dict[str, list[str]] = {
    "duplicate_key.yml": [
        "9:5: steps[0].title: duplicate key 'title' (first defined at line 7)",
    ],
    "anchor_alias.yml": [
        "4:8: anchor &title is not allowed; runbooks are read as plain data",
        "5:14: alias *title is not allowed; repeat the value instead",
    ],
    "tags.yml": [
        "4:8: tag !foo is not allowed; remove it (quote the value for a string)",
        "5:14: tag !!python/object:os.system is not allowed; remove it (quote the value for a string)",
    ],
    "tabs.yml": [
        "7:1: tab in indentation; YAML indents with spaces only",
    ],
    "syntax_error.yml": [
        "9:1: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar started at line 4, column 8)",
    ],
    "empty.yml": [
        "1:1: the file is empty",
    ],
    "not_utf8.yml": [
        "4:1: not UTF-8 (byte 0xe9); save the file as UTF-8",
    ],
    "unknown_key.yml": [
        "9:5: steps[0].timout: unknown key 'timout'; did you mean 'timeout'?",
    ],
    "wrong_types.yml": [
        "5:11: warnings: expected array, got a string",
        "10:24: steps[0].continue_on_error: expected boolean, got a string",
        "11:18: steps[0].concurrency: expected integer, got a number",
    ],
    "version_float.yml": [
        "3:10: version: expected string, got a number; quote it: '1.10'",
    ],
    "duplicate_step_ids.yml": [
        "12:9: steps[2].id: duplicate step id 'restart' (first used at line 6)",
    ],
    "unknown_target.yml": [
        "12:9: steps[0].on: unknown target 'node'; targets: local, nodes",
    ],
    "format_2.yml": [
        "1:10: runbook: unsupported format version 2; supported: 1",
    ],
    "run_and_manual.yml": [
        "9:5: steps[0].manual: 'manual' is not allowed with 'run': a step runs a command or is manual, "
        "not both (record is for manual steps)",
    ],
    "bad_default.yml": [
        "9:14: variables.retries.default: 0 is less than the minimum of 1",
    ],
    "undefined_name.yml": [
        "10:10: steps[0].run: undefined name 'snapshto'; did you mean 'snapshot'?",
        # inside the `|` block: the line of the template's third line, not of `run:`
        "16:1: steps[1].run: undefined name 'snapshot_name'; did you mean 'snapshot'?",
    ],
    "go_template.yml": [
        "10:1: steps[0].run: this looks like a Go/docker template ({{.Field}}); jinja reads {{ }} too: "
        "wrap it in {% raw %}…{% endraw %}",
    ],
    "sandbox.yml": [
        "8:10: steps[0].run: access to '__class__' is not allowed in the sandbox",
    ],
    "later_step.yml": [
        "8:10: steps[0].run: steps.second: no earlier step has id 'second' (only steps that ran before can be read)",
        "11:10: steps[1].run: steps.nowhere: no earlier step has id 'nowhere' (only steps that ran before can be read)",
    ],
    # issue 19 item 8: a NUL reaches no command, environment or file name (exit 70 from subprocess before)
    "nul.yml": [
        f"6:22: variables.message.default: {NUL_MESSAGE}",
        f"10:10: steps[0].run: {NUL_MESSAGE}",
        f"13:10: steps[1].use: {NUL_MESSAGE}",
    ],
    # a loop_var the schema refuses, with a template reading `item`: an internal error before
    "loop_var_number.yml": [
        "9:15: steps[0].loop_var: expected string, got an integer",
    ],
    # issue 19 item 9: what a template over constants would build is known at validation
    "too_large.yml": [
        "10:1: steps[0].run: too large: '*' would build 1,000,000,000 characters; a template may build at most "
        "1,048,576 (MAX_TEXT)",
        "13:11: steps[1].loop: too large: '*' would build 1,000,000 items; a template may build at most 10,000 "
        "(MAX_ITEMS)",
        "14:10: steps[1].run: too large: lipsum's paragraphs would build 1,000,000 items; a template may build at "
        "most 10,000 (MAX_ITEMS)",
        "17:11: steps[2].loop: a loop runs at most 10,000 items (MAX_ITEMS); this one has more",
    ],
    # several problems of the schema phase, all reported at once
    "many_problems.yml": [
        "1:1: 'title' is required",
        "2:7: name: 'Demo Runbook' is not a runbook name: lowercase letters, digits and -, starting with a letter or "
        "digit (at most 64)",
        "3:10: version: expected string, got a number; quote it: '2.0'",
        "4:1: titel: unknown key 'titel'; did you mean 'title'?",
        "9:5: targets.nodes.concurency: unknown key 'concurency'; did you mean 'concurrency'?",
        "15:7: steps[0].run.macos: unknown key 'macos'; allowed: linux, darwin, windows, default",
        "16:14: steps[0].timeout: '10 minutes' is not a duration: write seconds (90) or a number with a unit "
        "(500ms, 30s, 10m, 1h)",
        "17:5: steps[1]: 'id' is required",
    ],
    # several problems found after the schema: defaults, targets, ids, templates, all at once
    "many_semantic.yml": [
        "6:47: variables.count.default: 0 is less than the minimum of 1",
        "10:9: steps[0].on: unknown target 'nodes'; targets: local",
        "11:10: steps[0].run: undefined name 'cuont'; did you mean 'count'?",
        "12:9: steps[1].id: duplicate step id 'one' (first used at line 8)",
        "14:10: steps[1].run: access to '__class__' is not allowed in the sandbox",
        "15:11: steps[1].when: 'when' is a bare expression: remove the {{ }}",
    ],
}


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """`validate` of every case file (and the raw-warning file)."""
    env = clean_env(tmp_path_factory.mktemp("home"))
    found = {}
    for name in [*CASES, "raw_warning.yml"]:
        done = in_process(["validate", f"{DATA}/{name}"], ROOT, env)
        found[name] = Result(done.returncode, done.stdout, done.stderr)
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_runbook_is_refused_at_its_line(results: dict[str, Result], name: str) -> None:
    result = results[name]
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert result.problems == [f"{DATA}/{name}:{line}" for line in CASES[name]]
    count = len(CASES[name])
    assert result.stderr.splitlines()[-1] == f"{count} problem{'s' if count != 1 else ''} found"
    assert result.stdout == ""


def test_raw_is_a_warning_with_its_line(results: dict[str, Result]) -> None:
    result = results["raw_warning.yml"]
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"{DATA}/raw_warning.yml:12:1: steps[0].run: warning: '| raw' inserts the value unquoted; "
        "be sure it cannot carry shell syntax"
    ]
    assert result.stdout == f"{DATA}/raw_warning.yml: ok — demo 1.0, 1 step, 1 warning\n"


def test_the_shipped_runbook_validates(tmp_path: Path) -> None:
    process = start(["validate", "runbooks/ha-rollback.yml"], clean_env(tmp_path))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == ""
    assert stdout == "runbooks/ha-rollback.yml: ok — rancher-ha-rollback 1.0.0, 6 steps\n"


def test_several_files_each_reported_and_any_invalid_fails(tmp_path: Path) -> None:
    """Issue 23: `runbook validate A B…` takes several files (a pre-commit hook passes many)."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        'runbook: 1\nname: b\nversion: "1"\ntitle: B\nsteps:\n  - id: a\n    title: A\n    run: echo {{ nope }}\n'
    )
    files = ["runbooks/ha-rollback.yml", str(broken), "runbooks/etcd-snapshot.yml"]
    result = in_process(["validate", *files], ROOT, clean_env(tmp_path))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "runbooks/ha-rollback.yml: ok — rancher-ha-rollback 1.0.0, 6 steps",
        "runbooks/etcd-snapshot.yml: ok — rke-etcd-snapshot 1.0.0, 1 step",
    ]
    assert result.stderr == f"{broken}:8:10: steps[0].run: undefined name 'nope'\n1 problem found\n"
    both = in_process(["validate", files[0], files[2]], ROOT, clean_env(tmp_path))
    assert both.returncode == 0, both.stderr
