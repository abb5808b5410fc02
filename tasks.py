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


ns = collection()
ns.add_task(bench)
