"""Tasks for `invoke`: the product's commands (from engine.cli) plus the developers' own.

Run `invoke --list` for all of them and `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

import sys

from invoke import Context, task

from engine.cli import collection


@task(help={"quick": "Fewer repetitions (for a smoke check)."})
def bench(c: Context, quick: bool = False) -> None:
    """Benchmarks: validate/plan wall times (median), engine overhead per step. Prints a table."""
    c.run(f"{sys.executable} benchmarks/run.py" + (" --quick" if quick else ""), pty=False)


@task(help={"fix": "Apply ruff's safe fixes and reformat instead of only reporting."})
def lint(c: Context, fix: bool = False) -> None:
    """ruff (lint, import order, format) over the tree and mypy --strict over engine/, as CI runs them."""
    py = sys.executable
    if fix:
        c.run(f"{py} -m ruff check --fix . && {py} -m ruff format .", pty=False)
    c.run(f"{py} -m ruff check . && {py} -m ruff format --check . && {py} -m mypy", pty=False)


ns = collection()
ns.add_task(bench)
ns.add_task(lint)
