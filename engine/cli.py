"""The command line: invoke tasks shared by `invoke <task>` (tasks.py) and the `runbook` console script.

Each task only parses its flags and calls one command module (imported lazily, so `validate` never pays
for SSH or the terminal UI). `_exits` is the one place where errors become exit codes.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Collection, Context, Program, task
from invoke.exceptions import Exit

from engine import __version__
from engine.errors import EXIT_INTERRUPTED, InvalidRunbook, RunbookError

F = TypeVar("F", bound=Callable[..., Any])

_RUNBOOK_HELP = {
    "file": "The runbook file (YAML).",
    "var": "A variable value, NAME=VALUE; repeat for several. Strongest source of values.",
    "vars-file": "A YAML file of NAME: VALUE pairs (weaker than --var, stronger than RUNBOOK_VAR_<NAME>).",
    "platform": "Platform of this machine for local steps: linux, darwin or windows (default: this machine's).",
    "hosts": "Override a target's hosts, TARGET=host1,user@host2:2222; repeatable.",
    "target": "Run a target's steps on this machine instead, TARGET=local; repeatable.",
}
_ITERABLE = ["var", "hosts", "target"]


def _exits(function: F) -> F:
    """Map errors to exit codes: 2 invalid input, 1 step failed, 3 preflight, 130 interrupted; a bug says so."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = function(*args, **kwargs)
        except InvalidRunbook as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            count = len(error.problems)
            print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
            raise Exit(code=error.exit_code) from None
        except RunbookError as error:
            print(f"error: {error}", file=sys.stderr)
            raise Exit(code=error.exit_code) from None
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            raise Exit(code=EXIT_INTERRUPTED) from None
        except Exception:  # a bug: show it, and say it is one
            traceback.print_exc()
            print("internal error: this is a bug in the runbook engine, please report it", file=sys.stderr)
            raise Exit(code=70) from None
        if code:
            raise Exit(code=code)

    return wrapper  # type: ignore[return-value]


def _options(file: str, var: list[str] | None, vars_file: str | None, platform: str | None,
             hosts: list[str] | None, target: list[str] | None) -> Any:
    from engine.options import Options

    return Options(file, tuple(var or ()), vars_file, platform, tuple(hosts or ()), tuple(target or ()))


@task(help={"file": _RUNBOOK_HELP["file"]}, auto_shortflags=False)
@_exits
def validate(c: Context, file: str) -> int:
    """Check a runbook: schema, templates, lint. Every problem at once, as file:line:col. Exit 2 if invalid."""
    from engine.commands import validate as command

    return command.main(file)


@task(help={**_RUNBOOK_HELP, "save": "Also write the rendered plan as JSON, with its sha256, to this file."},
      iterable=_ITERABLE, auto_shortflags=False)
@_exits
def plan(c: Context, file: str, var: list[str] | None = None, vars_file: str | None = None,
         platform: str | None = None, hosts: list[str] | None = None, target: list[str] | None = None,
         save: str | None = None) -> int:
    """Dry run: every step, per host, the exact command, cwd and timeout. Nothing is executed."""
    from engine.commands import plan as command

    return command.main(_options(file, var, vars_file, platform, hosts, target), save)


@task(name="list", help={"dir": "Directory to list (default: runbooks)."}, auto_shortflags=False)
@_exits
def list_(c: Context, dir: str = "runbooks") -> int:
    """List the runbooks of a directory: file, name, version, title."""
    from engine.commands import listing

    return listing.main(dir)


@task(auto_shortflags=False)
@_exits
def schema(c: Context) -> int:
    """Print the runbook JSON Schema (for editors: yaml-language-server, VS Code)."""
    from engine.commands import schema as command

    return command.main()


TASKS = [validate, plan, list_, schema]


def collection() -> Collection:
    """A fresh collection of the product's tasks (tasks.py adds the developer ones)."""
    return Collection(*TASKS)


def main() -> None:
    """Entry point of the `runbook` console script."""
    Program(namespace=collection(), name="runbook", binary="runbook", version=__version__).run()
