"""`validate --format json|github`: the same findings as the text, for scripts and for GitHub annotations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.commands import validate
from engine.errors import Problem, UsageError
from engine.flags import build

ROOT = Path(__file__).resolve().parent.parent
MALFORMED = "tests/data/malformed"


def run(capsys: pytest.CaptureFixture[str], files: list[str], format: str) -> tuple[int, str, str]:
    code = validate.check_files(files, validate.Format(format))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_github_annotates_each_problem_at_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, [f"{MALFORMED}/many_semantic.yml", "runbooks/ha-rollback.yml"], "github")
    assert code == 2
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == (
        f"::error file={MALFORMED}/many_semantic.yml,line=6,col=47::"
        "variables.count.default: 0 is less than the minimum of 1"
    )
    assert len(lines) == 7  # six problems, and the valid file said ok
    assert lines[-1] == "runbooks/ha-rollback.yml: ok"
    assert all(line.startswith(f"::error file={MALFORMED}/many_semantic.yml,line=") for line in lines[:-1])


def test_github_workflow_commands_are_escaped() -> None:
    problem = Problem("a,b:c.yml", 3, 4, "steps[0].run", "50% done\nnext: line")
    assert validate.workflow_command("error", problem) == (
        "::error file=a%2Cb%3Ac.yml,line=3,col=4::steps[0].run: 50%25 done%0Anext: line"
    )
    assert validate.workflow_command("warning", Problem("x.yml", 0, 0, "", "cannot read")) == (
        "::warning file=x.yml::cannot read"
    )


def test_json_is_one_versioned_document_with_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    files = [f"{MALFORMED}/run_and_manual.yml", f"{MALFORMED}/raw_warning.yml", "missing.yml"]
    code, out, err = run(capsys, files, "json")
    assert code == 2
    assert err == ""
    document = json.loads(out)
    assert (document["format"], document["format_version"], document["valid"]) == (
        "runbook-validate",
        1,
        False,
    )
    broken, warned, missing = document["files"]
    assert broken["valid"] is False and broken["runbook"] is None
    assert broken["problems"] == [
        {
            "severity": "error",
            "line": 9,
            "column": 5,
            "path": "steps[0].manual",
            "message": "'manual' is not allowed with 'run': a step runs a command or is manual, not both "
            "(record is for manual steps)",
        }
    ]
    assert warned["valid"] is True
    assert warned["runbook"] == {"name": "demo", "version": "1.0", "steps": 1}
    assert [(p["severity"], p["line"]) for p in warned["problems"]] == [("warning", 12)]
    assert missing["problems"][0]["line"] is None
    assert missing["problems"][0]["message"].startswith("cannot read")


def test_text_of_several_files_says_each(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, ["runbooks/ha-rollback.yml", f"{MALFORMED}/unknown_key.yml"], "text")
    assert code == 2
    assert out == "runbooks/ha-rollback.yml: ok — rancher-ha-rollback 1.0.0, 6 steps\n"
    assert err.splitlines() == [
        f"{MALFORMED}/unknown_key.yml:9:5: steps[0].timout: unknown key 'timout'; did you mean 'timeout'?",
        "1 problem found",
    ]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(UsageError, match="--format 'xml': choose one of text, json, github"):
        build(validate.ValidateOptions, {"file": "runbooks/ha-rollback.yml", "format": "xml"}, "validate")


def test_the_command_lines_take_the_format(tmp_path: Path) -> None:
    """`runbook validate --format github FILE` and `runbook-validate FILE…` (the pre-commit hook's entry)."""
    bin_dir = Path(sys.executable).parent
    single = subprocess.run(
        [bin_dir / "runbook", "validate", "--format", "github", f"{MALFORMED}/unknown_key.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (single.returncode, single.stderr) == (2, "")
    assert single.stdout.startswith(f"::error file={MALFORMED}/unknown_key.yml,line=9,col=5::")
    several = subprocess.run(
        [bin_dir / "runbook-validate", "runbooks/ha-rollback.yml", f"{MALFORMED}/empty.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert several.returncode == 2
    assert several.stderr == f"{MALFORMED}/empty.yml:1:1: the file is empty\n1 problem found\n"
