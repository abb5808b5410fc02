"""Tasks for `invoke`: the product's commands (from engine.cli) plus the developers' own.

Run `invoke --list` for all of them and `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

import compileall
import random
import shlex
import sys
from pathlib import Path

from invoke import Context, task

# From a checkout, engine/ is imported from its source, and where PYTHONDONTWRITEBYTECODE=1 is set (as on
# our machines) Python never writes the bytecode: every `invoke run` would compile the engine again, ~0.18 s
# of a 1.35 s rollback. So compile it here, explicitly, as an install would; when the bytecode is fresh this
# is a stat and a 16-byte read per module. quiet=2: a module that does not compile (or a read-only checkout)
# is left to the import below, which reports it at its line.
compileall.compile_dir(Path(__file__).resolve().parent / "engine", quiet=2)

from engine.cli import collection  # noqa: E402 (after its bytecode is fresh)


@task(
    help={
        "quick": "Smoke check: 3 nodes, 3 runs, fabric only if its venv exists, no ansible.",
        "nodes": "Node counts, comma-separated (default 3,20,100,250).",
        "runs": "Interleaved runs per command and N (default 5).",
        "ansible-max": "Largest N ansible-playbook runs at (default 20; it takes minutes beyond).",
    },
    auto_shortflags=False,
)
def bench(c: Context, quick: bool = False, nodes: str = "", runs: int = 0, ansible_max: int = 20) -> None:
    """Whole-process wall times and peak RSS: `runbook run` vs OpenSSH, fabric, ansible; start-up. Writes
    benchmarks/results/bench.md and .json."""
    argv = [sys.executable, "benchmarks/bench.py", "--ansible-max", str(ansible_max)]
    argv += ["--quick"] if quick else []
    argv += ["--nodes", *nodes.split(",")] if nodes else []
    argv += ["--runs", str(runs)] if runs else []
    c.run(shlex.join(argv), pty=False)


@task(help={"fix": "Apply ruff's safe fixes and reformat instead of only reporting."})
def lint(c: Context, fix: bool = False) -> None:
    """ruff (lint, import order, format) over the tree and mypy --strict over engine/, as CI runs them."""
    py = sys.executable
    if fix:
        c.run(f"{py} -m ruff check --fix . && {py} -m ruff format .", pty=False)
    c.run(f"{py} -m ruff check . && {py} -m ruff format --check . && {py} -m mypy", pty=False)


@task(help={"examples": "How many hostile documents (and values) to try (default 5000)."})
def fuzz(c: Context, examples: int = 5000) -> None:
    """The suite's fuzz tests (tests/test_fuzz.py) at length, exploring new cases each time."""
    c.run(
        f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_fuzz.py",
        env={"RUNBOOK_FUZZ_EXAMPLES": str(examples)},
        pty=False,
    )


@task(help={"iterations": "How many SIGKILLs (default 30).", "seed": "Random seed (default: a new one)."})
def torture(c: Context, iterations: int = 30, seed: int = -1) -> None:
    """A run SIGKILLed at random moments and resumed, again and again (tests/torture.py): every step runs,
    never twice at once, never again after it ended well."""
    chosen = seed if seed >= 0 else random.randrange(10**6)
    print(f"seed {chosen}")
    c.run(f"{sys.executable} tests/torture.py {iterations} {chosen}", pty=False)


ns = collection()
ns.add_task(bench)
ns.add_task(fuzz)
ns.add_task(lint)
ns.add_task(torture)
