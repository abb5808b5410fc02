"""The pre-commit hook, through the real `pre-commit try-repo`: a good runbook passes, a broken one fails at its line.

The hook repository is this working tree as it is (tracked and new files) committed into a fresh git repo,
so what is tested is what would be pushed. pre-commit installs it into its own virtualenv with pip, once for
both runs (about a minute: the cost of testing the hook as users get it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")
BROKEN = """\
runbook: 1
name: broken
version: "1.0"
title: Broken
steps:
  - id: wait
    title: Wait
    run: sleep 1
    timeout: 30 minutes
"""


def git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree's files, committed into a new repository (try-repo reads committed files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name, follow_symlinks=False)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hooks")
    return repo


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["PRE_COMMIT_HOME"] = str(tmp_path_factory.mktemp("pre-commit-home"))
    env["PIP_NO_COMPILE"] = "1"  # no bytecode for the hook's own environment: it runs twice, briefly
    return env


def try_repo(consumer: Path, hook_repo: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`pre-commit try-repo` started in `consumer`. Each try-repo builds the hook's environment afresh in a
    temporary store (about a minute), so the tests start theirs together."""
    return subprocess.Popen(
        [str(PRE_COMMIT), "try-repo", str(hook_repo), "runbook-validate", "--all-files", "--color", "never"],
        cwd=consumer,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def consumer_repo(root: Path, files: dict[str, str]) -> Path:
    """A repository of runbooks, committed (try-repo checks the files of the index with --all-files)."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "runbooks")
    return root


def test_the_hook_passes_good_runbooks_and_fails_a_broken_one_at_its_line(
    tmp_path: Path, hook_repo: Path, environment: dict[str, str]
) -> None:
    good_files = {
        "runbooks/ha-rollback.yml": (ROOT / "runbooks/ha-rollback.yml").read_text(encoding="utf-8"),
        "deploy.runbook.yml": BROKEN.replace("30 minutes", "30m").replace("broken", "deploy"),
        "ci.yml": "jobs: {build: {timeout: 30 minutes}}\n",  # YAML, but not a runbook: not checked
    }
    good = try_repo(consumer_repo(tmp_path / "good", good_files), hook_repo, environment)
    broken = try_repo(
        consumer_repo(tmp_path / "broken", {**good_files, "runbooks/broken.yml": BROKEN}),
        hook_repo,
        environment,
    )
    try:
        good_out, _ = good.communicate(timeout=900)
        broken_out, _ = broken.communicate(timeout=900)
    finally:
        for process in (good, broken):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)

    assert good.returncode == 0, good_out
    assert "runbook validate" in good_out and "Passed" in good_out

    assert broken.returncode == 1, broken_out
    assert "Failed" in broken_out
    assert (
        "runbooks/broken.yml:9:14: steps[0].timeout: '30 minutes' is not a duration: write seconds (90) or a "
        "number with a unit (500ms, 30s, 10m, 1h)"
    ) in broken_out
    assert "1 problem found" in broken_out
    assert "runbooks/ha-rollback.yml: ok" in broken_out  # the good files of the same commit are checked too
    assert "ci.yml" not in broken_out
