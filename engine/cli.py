"""The command line: invoke tasks shared by `invoke <task>` (tasks.py) and the `runbook` console script.

Each task only parses its flags and calls one command module (imported lazily, so `validate` never pays
for SSH or the terminal UI). `error_handler` is the one place where errors become messages and exit codes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.program import Program
from invoke.tasks import Task, task

from engine import __version__
from engine.errors import InvalidRunbook, RunbookError, exit_code

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
    """Run a task under `error_handler`: its return value, or the error it raised, is its exit code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with error_handler():
            code = function(*args, **kwargs)
        if code:
            raise Exit(code=code)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    """The one place errors become messages and exit codes (the codes themselves: `errors.exit_code`).

    A user's mistake gets its message and no traceback; Ctrl-C a short note; a bug its traceback and a
    word that it is one; a reader that went away (`| head`) nothing at all.
    """
    try:
        yield
    except InvalidRunbook as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        raise Exit(code=exit_code(error)) from None
    except RunbookError as error:
        print(f"error: {error}", file=sys.stderr)
        raise Exit(code=exit_code(error)) from None
    except KeyboardInterrupt as error:
        print("\ninterrupted", file=sys.stderr)
        raise Exit(code=exit_code(error)) from None
    except BrokenPipeError as error:
        _quiet_stdout()
        raise Exit(code=exit_code(error)) from None
    except Exception as error:  # a bug: show it, and say it is one
        traceback.print_exc()
        print("internal error: this is a bug in the runbook engine, please report it", file=sys.stderr)
        raise Exit(code=exit_code(error)) from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python's final flush would otherwise hit the closed pipe and print a
    traceback after all."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _options(
    file: str,
    var: list[str] | None,
    vars_file: str | None,
    platform: str | None,
    hosts: list[str] | None,
    target: list[str] | None,
) -> Any:
    from engine.options import Options

    return Options(file, tuple(var or ()), vars_file, platform, tuple(hosts or ()), tuple(target or ()))


_VALIDATE_FORMAT = "text (default), json (one versioned document) or github (workflow commands: annotations)."


@task(help={"file": _RUNBOOK_HELP["file"], "format": _VALIDATE_FORMAT}, auto_shortflags=False)
@_exits
def validate(c: Context, file: str, format: str = "text") -> int:
    """Check a runbook: schema, templates, lint. Every problem at once, as file:line:col. Exit 2 if invalid."""
    from engine.commands import validate as command

    return command.main([file], format)


def validate_files(argv: list[str] | None = None) -> None:
    """Entry point of `runbook-validate FILE…`: `validate` for several files (the pre-commit hook)."""
    import argparse

    from engine.commands import validate as command

    parser = argparse.ArgumentParser(
        prog="runbook-validate", description="Check runbooks; exit 2 if any is invalid."
    )
    parser.add_argument("--format", choices=command.FORMATS, default="text", help=_VALIDATE_FORMAT)
    parser.add_argument("files", nargs="+", metavar="FILE", help="runbook files (YAML)")
    args = parser.parse_args(argv)
    try:
        _exits(command.main)(args.files, args.format)
    except Exit as done:
        sys.exit(done.code)


@task(
    help={**_RUNBOOK_HELP, "save": "Also write the rendered plan as JSON, with its sha256, to this file."},
    iterable=_ITERABLE,
    auto_shortflags=False,
)
@_exits
def plan(
    c: Context,
    file: str,
    var: list[str] | None = None,
    vars_file: str | None = None,
    platform: str | None = None,
    hosts: list[str] | None = None,
    target: list[str] | None = None,
    save: str | None = None,
) -> int:
    """Dry run: every step, per host, the exact command, cwd and timeout. Nothing is executed."""
    from engine.commands import plan as command

    return command.main(_options(file, var, vars_file, platform, hosts, target), save)


class _OutputShortFlag(Task[Any]):
    """A task whose `--output` also answers to `-o` (every other flag stays long-only)."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        if name == "output":
            opts["names"] = [*opts["names"], "o"]
        return opts


@task(
    klass=_OutputShortFlag,
    iterable=_ITERABLE,
    auto_shortflags=False,
    help={
        **_RUNBOOK_HELP,
        "platform": "Show only this platform's commands for local steps (default: every variant, labelled).",
        "format": "md (Markdown task list, the default) or html (one standalone printable page).",
        "output": "Write to this file instead of standard output (-o).",
        "journal": "Fill the checklist from this run's journal: RUN_ID, a directory under STATE_DIR/runs.",
        "state-dir": "Where runs are kept (default: $RUNBOOK_STATE_DIR or .runbook).",
        "paper": "HTML page size: auto (the printer's, default), a4 or letter.",
    },
)
@_exits
def checklist(
    c: Context,
    file: str,
    var: list[str] | None = None,
    vars_file: str | None = None,
    platform: str | None = None,
    hosts: list[str] | None = None,
    target: list[str] | None = None,
    format: str = "md",
    output: str | None = None,
    journal: str | None = None,
    state_dir: str | None = None,
    paper: str = "auto",
) -> int:
    """Printable checklist of the plan (Markdown or HTML), optionally filled from a run's journal."""
    from engine.commands import checklist as command

    return command.main(
        _options(file, var, vars_file, platform, hosts, target), format, output, journal, state_dir, paper
    )


@task(
    klass=_OutputShortFlag,
    iterable=_ITERABLE,
    auto_shortflags=False,
    help={
        **_RUNBOOK_HELP,
        "kind": "What to export to: ansible (a playbook and an inventory).",
        "platform": "Fix this machine's platform for local steps (default: chosen on the host at run time).",
        "output": "The directory to write to (-o): playbook.yml and inventory.yml.",
        "lossy": "Export what can be expressed; write a comment at each place that cannot (default: refuse).",
    },
)
@_exits
def export(
    c: Context,
    kind: str,
    file: str,
    output: str | None = None,
    var: list[str] | None = None,
    vars_file: str | None = None,
    platform: str | None = None,
    hosts: list[str] | None = None,
    target: list[str] | None = None,
    lossy: bool = False,
) -> int:
    """Export the plan for another engine: `export ansible FILE -o DIR` writes a playbook and an inventory."""
    from engine.commands import export as command

    return command.main(_options(file, var, vars_file, platform, hosts, target), kind, output, lossy)


@task(name="list", help={"dir": "Directory to list (default: runbooks)."}, auto_shortflags=False)
@_exits
def list_(c: Context, dir: str = "runbooks") -> int:
    """List the runbooks of a directory: file, name, version, title."""
    from engine.commands import listing

    return listing.main(dir)


@task(
    help={"path": "Print the installed schema's file path instead (for editor settings)."},
    auto_shortflags=False,
)
@_exits
def schema(c: Context, path: bool = False) -> int:
    """Print the runbook JSON Schema (for editors: yaml-language-server, VS Code), or its path."""
    from engine.commands import schema as command

    return command.main(path)


_RUN_HELP = {
    **_RUNBOOK_HELP,
    "yes": "Answer yes to the warnings and to step confirmations (never to manual steps).",
    "confirm-manual": "Answer manual steps too, with their expected value; the journal says so.",
    "plan": "A plan saved by `plan --save`: refuse to start if today's rendering differs from it.",
    "only": "Run just this step (by id).",
    "from": "Start at this step (by id), skipping the ones before.",
    "state-dir": "Where journals and locks live (default: $RUNBOOK_STATE_DIR or ./.runbook).",
    "resume": "Continue the latest unfinished run of this runbook (--resume) or the run with this id.",
    "rerun-unknown": "When resuming, run again steps whose outcome is unknown (started, never ended).",
    "force": "Resume even though the runbook changed since the run began.",
    "trust-new-host-keys": "Accept and remember SSH host keys not yet in known_hosts (never a changed key).",
}


@task(help=_RUN_HELP, iterable=_ITERABLE, auto_shortflags=False, optional=["resume"])
@_exits
def run(
    c: Context,
    file: str,
    var: list[str] | None = None,
    vars_file: str | None = None,
    platform: str | None = None,
    hosts: list[str] | None = None,
    target: list[str] | None = None,
    yes: bool = False,
    confirm_manual: bool = False,
    plan: str | None = None,
    only: str | None = None,
    from_: str | None = None,
    state_dir: str | None = None,
    resume: Any = None,
    rerun_unknown: bool = False,
    force: bool = False,
    trust_new_host_keys: bool = False,
) -> int:
    """Run a runbook: warnings, preflight, then every step, journaled. Exit 0/1/2/3/130."""
    from engine.commands import run as command

    which = None if resume in (None, False) else ("latest" if resume is True else str(resume))
    settings = command.RunOptions(
        yes, confirm_manual, rerun_unknown, plan, only, from_, state_dir, which, force, trust_new_host_keys
    )
    return command.main(_options(file, var, vars_file, platform, hosts, target), settings)


@task(
    help={
        "run-id": "Show this run step by step (default: list every run); a unique prefix is enough.",
        "state-dir": "Where journals live (default: $RUNBOOK_STATE_DIR or ./.runbook).",
    },
    auto_shortflags=False,
)
@_exits
def runs(c: Context, run_id: str | None = None, state_dir: str | None = None) -> int:
    """Past runs: id, runbook, version, who, started, status; or one run, step by step and host by host."""
    from engine.commands import history

    return history.main(state_dir, run_id)


@task(help={"keep": "Keep the lab directory (printed) instead of deleting it."}, auto_shortflags=False)
@_exits
def demo(c: Context, keep: bool = False) -> int:
    """Run runbooks/ha-rollback.yml end to end in a throwaway lab: stand-ins for rke, docker, kubectl."""
    from engine import demo as command

    return command.main(keep)


TASKS = [validate, plan, run, list_, schema, runs, demo, checklist, export]


def collection() -> Collection:
    """A fresh collection of the product's tasks (tasks.py adds the developer ones)."""
    return Collection(*TASKS)


# invoke has no optional positional arguments (pyinvoke/invoke#159): the console script accepts
# `runbook runs RUN_ID` and `runbook list DIR` by adding the flag; `invoke` itself needs the flag.
_OPTIONAL_POSITIONAL = {"runs": "--run-id", "list": "--dir"}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `runbook` console script.

    `runbook run --help` is what people type; invoke would read `--help` as the runbook file (it fills the
    positional first), so it is turned into invoke's own `runbook --help run`.
    """
    # Python leaves SIGINT ignored when it starts so (`runbook run … &` from a script, nohup): Ctrl-C and
    # `kill -INT` must still stop a run, kill its commands and journal the interruption.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = list(sys.argv if argv is None else argv)
    if len(argv) >= 3 and argv[2] in ("--help", "-h") and not argv[1].startswith("-"):
        argv = [argv[0], "--help", argv[1], *argv[3:]]
    elif len(argv) >= 3 and argv[1] in _OPTIONAL_POSITIONAL and not argv[2].startswith("-"):
        argv = [argv[0], argv[1], _OPTIONAL_POSITIONAL[argv[1]], *argv[2:]]
    try:
        Program(namespace=collection(), name="runbook", binary="runbook", version=__version__).run(argv)
    except BrokenPipeError as error:  # from invoke's own output (`runbook --help | head`)
        _quiet_stdout()
        sys.exit(exit_code(error))
