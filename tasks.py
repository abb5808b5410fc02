"""Tasks for `invoke`: the product's commands (from engine.cli) plus the developers' own.

Run `invoke --list` for all of them and `invoke --help TASK` for a task's flags. Each task's flags are the
fields of one option dataclass (`engine.flags`), as the product's are.
"""

from __future__ import annotations

import compileall
import random
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from invoke import Context

# From a checkout, engine/ is imported from its source, and where PYTHONDONTWRITEBYTECODE=1 is set (as on
# our machines) Python never writes the bytecode: every `invoke run` would compile the engine again, ~0.18 s
# of a 1.35 s rollback. So compile it here, explicitly, as an install would; when the bytecode is fresh this
# is a stat and a 16-byte read per module. quiet=2: a module that does not compile (or a read-only checkout)
# is left to the import below, which reports it at its line.
compileall.compile_dir(Path(__file__).resolve().parent / "engine", quiet=2)

from engine.cli import collection  # noqa: E402 (after its bytecode is fresh)
from engine.flags import developer_task, option  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class Bench:
    quick: bool = option(
        False, help="Smoke check: 3 nodes, 3 runs, fabric only if its venv exists, no ansible."
    )
    nodes: str = option("", help="Node counts, comma-separated (default 3,20,100,250).")
    runs: int = option(0, help="Interleaved runs per command and N (default 5).")
    ansible_max: int = option(
        20, help="Largest N ansible-playbook runs at (default 20; it takes minutes beyond)."
    )


@developer_task
def bench(c: Context, options: Bench) -> None:
    """Whole-process wall times and peak RSS: `runbook run` vs OpenSSH, fabric, ansible; start-up. Writes
    benchmarks/results/bench.md and .json."""
    argv = [sys.executable, "benchmarks/bench.py", "--ansible-max", str(options.ansible_max)]
    argv += ["--quick"] if options.quick else []
    argv += ["--nodes", *options.nodes.split(",")] if options.nodes else []
    argv += ["--runs", str(options.runs)] if options.runs else []
    c.run(shlex.join(argv), pty=False)


@dataclass(frozen=True, kw_only=True)
class Lint:
    fix: bool = option(
        False, short="f", help="Apply ruff's safe fixes and reformat instead of only reporting."
    )


@developer_task
def lint(c: Context, options: Lint) -> None:
    """ruff (lint, import order, format) over the tree and mypy --strict over engine/, as CI runs them."""
    py = sys.executable
    if options.fix:
        c.run(f"{py} -m ruff check --fix . && {py} -m ruff format .", pty=False)
    c.run(f"{py} -m ruff check . && {py} -m ruff format --check . && {py} -m mypy", pty=False)


@dataclass(frozen=True, kw_only=True)
class Fuzz:
    examples: int = option(
        5000, short="e", help="How many hostile documents (and values) to try (default 5000)."
    )


@developer_task
def fuzz(c: Context, options: Fuzz) -> None:
    """The suite's fuzz tests (tests/test_fuzz.py) at length, exploring new cases each time."""
    c.run(
        f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_fuzz.py",
        env={"RUNBOOK_FUZZ_EXAMPLES": str(options.examples)},
        pty=False,
    )


@dataclass(frozen=True, kw_only=True)
class Torture:
    iterations: int = option(30, short="i", help="How many SIGKILLs (default 30).")
    seed: int = option(-1, short="s", help="Random seed (default: a new one).")


@developer_task
def torture(c: Context, options: Torture) -> None:
    """A run SIGKILLed at random moments and resumed, again and again (tests/torture.py): every step runs,
    never twice at once, never again after it ended well."""
    chosen = options.seed if options.seed >= 0 else random.randrange(10**6)
    print(f"seed {chosen}")
    c.run(f"{sys.executable} tests/torture.py {options.iterations} {chosen}", pty=False)


ns = collection()
ns.add_task(bench)
ns.add_task(fuzz)
ns.add_task(lint)
ns.add_task(torture)
