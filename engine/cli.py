"""The command line: the commands, read by two front ends, and the one place errors become exit codes.

`COMMANDS` names each command, its module and its help. The module's `main` takes option dataclasses
(`engine.flags`: each flag declared once, as a field) and the front ends are generated from them:
`collection()` for `invoke <task>` (tasks.py), `main()`, the `runbook` console script, builds an argparse
parser, so `runbook` never imports invoke (150 ms: it pulls in unittest.mock and importlib.metadata) and its
help shows only its own flags, each with its value placeholder (`--var NAME=VALUE`).

A command's module is imported only when the command is named (`validate` never pays for SSH or the
terminal UI; `runbook --help` for none of them). `error_handler` is the one place where errors become
messages and exit codes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import os
import signal
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import __version__, flags
from engine.errors import EXIT_INVALID, InvalidRunbook, RunbookError, exit_code

if TYPE_CHECKING:
    import argparse

    from invoke.collection import Collection


@dataclass(frozen=True, kw_only=True)
class Command:
    """One command: its name, its help, and the module whose `main(options…)` runs it."""

    name: str
    module: str  # imported when the command is named
    doc: str

    def main(self) -> Callable[..., int]:
        function: Callable[..., int] = importlib.import_module(self.module).main
        return function

    def options(self) -> tuple[type, ...]:
        """The option dataclasses `main` takes, in order: their fields are the command's flags."""
        main = self.main()
        hints = typing.get_type_hints(main)
        return tuple(hints[name] for name in inspect.signature(main).parameters)

    def specs(self) -> tuple[flags.Spec, ...]:
        return tuple(spec for options in self.options() for spec in flags.specs(options))

    def __call__(self, given: Mapping[str, Any]) -> None:
        """Run with what a front end parsed (by field name), under `error_handler`; a code ends the process."""
        with error_handler():
            code = self.main()(*(flags.build(options, given, self.name) for options in self.options()))
        if code:
            raise SystemExit(code)

    def invoked(self, context: object, given: Mapping[str, Any]) -> None:
        """As an invoke task (its context unused: the command runs nothing through invoke)."""
        self(given)


COMMANDS = (
    Command(
        name="validate",
        module="engine.commands.validate",
        doc="Check a runbook: schema, templates, lint. Every problem at once, as file:line:col. Exit 2 if invalid.",
    ),
    Command(
        name="plan",
        module="engine.commands.plan",
        doc="Dry run: every step, per host, the exact command, cwd and timeout. Nothing is executed.",
    ),
    Command(
        name="checklist",
        module="engine.commands.checklist",
        doc="Printable checklist of the plan (Markdown or HTML), optionally filled from a run's journal.",
    ),
    Command(
        name="export",
        module="engine.commands.export",
        doc="Export the plan for another engine: `export ansible FILE -o DIR` writes a playbook and an inventory.",
    ),
    Command(
        name="list",
        module="engine.commands.listing",
        doc="List the runbooks below a directory (YAML files with `runbook:`): file, name, version, title.",
    ),
    Command(
        name="schema",
        module="engine.commands.schema",
        doc="Print the runbook JSON Schema (for editors: yaml-language-server, VS Code), or its path.",
    ),
    Command(
        name="run",
        module="engine.commands.run",
        doc="Run a runbook: warnings, preflight, then every step, journaled. Exit 0/1/2/3/130.",
    ),
    Command(
        name="rehearse",
        module="engine.commands.rehearse",
        doc="Rehearse a runbook: the real engine against simulated hosts (a scenario, injected faults), "
        "then a report with coverage. Nothing is executed, no host is connected.",
    ),
    Command(
        name="runs",
        module="engine.commands.history",
        doc="Past runs: id, runbook, version, who, started, status; or one run, step by step and host by host.",
    ),
    Command(
        name="approvals",
        module="engine.commands.approvals",
        doc="Steps waiting for approval: run, step, requester, since, and the command that approves each.",
    ),
    Command(
        name="approve",
        module="engine.commands.approve",
        doc="Approve (or --reject) a waiting step as another operator: shows what will run; typed confirmation.",
    ),
    Command(
        name="state",
        module="engine.commands.state",
        doc="The team's shared state on PostgreSQL: `state migrate` creates or upgrades its schema.",
    ),
    Command(
        name="demo",
        module="engine.demo",
        doc="Run runbooks/ha-rollback.yml end to end in a throwaway lab: stand-ins for rke, docker, kubectl.",
    ),
)


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    """The one place errors become messages and exit codes (the codes themselves: `errors.exit_code`).

    A user's mistake gets its message and no traceback; Ctrl-C a short note; a bug its traceback and a
    word that it is one; a reader that went away (`| head`) nothing at all. It ends with SystemExit, which
    both front ends (invoke's Program and `main`) turn into the process's exit code.
    """
    try:
        yield
    except InvalidRunbook as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        count = len(error.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None
    except RunbookError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None
    except KeyboardInterrupt as error:
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None
    except BrokenPipeError as error:
        _quiet_stdout()
        raise SystemExit(exit_code(error)) from None
    except Exception as error:  # a bug: show it, and say it is one
        import traceback  # only for a bug

        traceback.print_exc()
        print("internal error: this is a bug in the runbook engine, please report it", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python's final flush would otherwise hit the closed pipe and print a
    traceback after all."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def validate_files(argv: list[str] | None = None) -> None:
    """Entry point of `runbook-validate FILE…`: `validate` for several files (the pre-commit hook)."""
    import argparse

    from engine.commands import validate as command

    parser = argparse.ArgumentParser(
        prog="runbook-validate", description="Check runbooks; exit 2 if any is invalid."
    )
    flags.add_arguments(parser, command.ValidateFiles)
    given = vars(parser.parse_args(argv))
    with error_handler():
        chosen = flags.build(command.ValidateFiles, given, "runbook-validate")
        code = command.check_files(chosen.files, chosen.format)
    sys.exit(code)  # 2 when a file is invalid


def collection() -> Collection:
    """The product's commands as invoke tasks (tasks.py adds the developer ones); imports invoke."""
    from invoke.collection import Collection

    return Collection(*(flags.task(c.name, c.doc, c.options(), c.invoked) for c in COMMANDS))


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `runbook` command line: every command with its help; with `only` (a command's name), that command
    alone, with its flags (built from its option fields): the others' would cost their modules' import, and
    the parser of each a millisecond that `runbook validate FILE` does not need."""
    import argparse

    top = argparse.ArgumentParser(
        prog="runbook",
        description="Declarative YAML runbooks: validated, planned, run locally and over SSH, or printed.",
        allow_abbrev=False,
    )
    top.add_argument("--version", action="version", version=f"runbook {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    named = [c for c in COMMANDS if c.name == only]
    for spec in named or COMMANDS:
        sub = commands.add_parser(
            spec.name, help=spec.doc.split("\n\n")[0], description=spec.doc, allow_abbrev=False
        )
        if spec.name == only:
            for options in spec.options():
                flags.add_arguments(sub, options)
    return top


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `runbook` console script: parse with `parser()`, run the command, and leave
    without the interpreter's teardown (`_leave`) when running as the script itself (`argv` not given)."""
    script = argv is None
    if script:
        gc.disable()  # until the command's modules are imported: `_imported`
    # Python leaves SIGINT ignored when it starts so (`runbook run … &` from a script, nohup): Ctrl-C and
    # `kill -INT` must still stop a run, kill its commands and journal the interruption.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = list(sys.argv if argv is None else argv)
    try:
        command, given = _parse(argv)
    except BrokenPipeError as error:  # argparse's own output (`runbook --help | head`)
        _quiet_stdout()
        sys.exit(exit_code(error))
    if script:
        _imported()
    code: str | int | None = 0
    try:
        command(given)
    except SystemExit as done:  # `error_handler` ends every failing command this way
        code = done.code
    if script and not isinstance(code, str):
        _leave(code or 0)
    sys.exit(code)


def _parse(argv: list[str]) -> tuple[Command, dict[str, Any]]:
    """The command `argv` names and what was given, by field name; argparse exits 2 on a usage error."""
    line = parser(argv[1] if len(argv) > 1 else None)
    if len(argv) < 2:
        line.print_help(sys.stderr)
        sys.exit(EXIT_INVALID)
    given = vars(line.parse_args(argv[1:]))
    name = given.pop("command")
    command = next(c for c in COMMANDS if c.name == name)
    for spec in command.specs():
        twin = given.pop(f"{flags.POSITIONAL}{spec.field}", None)
        if twin is not None:
            if given[spec.field] != spec.default:
                line.error(f"{command.name}: give {spec.field} once, as a flag or as an argument")
            given[spec.field] = twin
    return command, given


def _imported() -> None:
    """The command's modules (and the libraries they use) are imported: freeze what they made and collect
    again. Importing allocates thousands of objects that live as long as the process, so the collections it
    triggers (~4 ms of a `validate`) free nothing; frozen, later collections of a long run never walk them.
    Only for the console script: in a caller's process (tests) freezing would keep its garbage for good."""
    gc.freeze()
    gc.enable()


def _leave(code: int) -> None:
    """Exit now, skipping the interpreter's teardown: freeing every module and object one by one costs
    0.2–0.4 s after the command is done, while the operator waits for the prompt. The command has closed
    and synced what it wrote (journal, outputs, lock); the atexit handlers still run, and the streams are
    flushed. With a thread other than daemons still alive (a bug), exit the ordinary way, which waits."""
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    os._exit(code)
