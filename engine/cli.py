"""The command line: one definition of the commands and their flags, read by two front ends.

`@command` records a command: its function (first parameter: invoke's context, unused), whose signature
gives the flags as invoke derives them (no default: positional; a bool: a switch; `from_`: `--from`), and
its help, placeholders and list-valued flags. `collection()` turns them into invoke tasks for `invoke
<task>` (tasks.py); `main()`, the `runbook` console script, builds an argparse parser from the same
records, so `runbook` never imports invoke (150 ms: it pulls in unittest.mock and importlib.metadata) and
its help shows only its own flags, each with its value placeholder (`--var NAME=VALUE`).

Each command only turns its flags into arguments and calls one command module (imported lazily, so
`validate` never pays for SSH or the terminal UI). `error_handler` is the one place where errors become
messages and exit codes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine import __version__
from engine.errors import EXIT_INVALID, InvalidRunbook, RunbookError, exit_code

if TYPE_CHECKING:
    import argparse

    from invoke.collection import Collection

F = TypeVar("F", bound=Callable[..., Any])

_RUNBOOK_HELP = {
    "file": "The runbook file (YAML).",
    "var": "A variable value; repeat for several. Strongest source of values.",
    "vars-file": "A YAML file of NAME: VALUE pairs (weaker than --var, stronger than RUNBOOK_VAR_<NAME>).",
    "platform": "Platform of this machine for local steps: linux, darwin or windows (default: this machine's).",
    "hosts": "Override a target's hosts, e.g. nodes=host1,user@host2:2222; repeatable.",
    "target": "Run a target's steps on this machine instead, TARGET=local; repeatable.",
}
_RUNBOOK_METAVARS = {
    "file": "FILE",
    "var": "NAME=VALUE",
    "vars-file": "FILE",
    "platform": "PLATFORM",
    "hosts": "TARGET=HOSTS",
    "target": "TARGET=local",
}
_ITERABLE = ("var", "hosts", "target")


@dataclass(frozen=True)
class Command:
    """One command as both front ends read it; `function`'s signature gives the flags."""

    function: Callable[..., Any]
    name: str
    help: Mapping[str, str] = field(default_factory=dict)  # by flag name, dashed ("vars-file")
    metavars: Mapping[str, str] = field(default_factory=dict)  # the value placeholder, by flag name
    iterable: tuple[str, ...] = ()  # parameters given as a repeatable flag (a list)
    optional: tuple[str, ...] = ()  # parameters whose flag may come without a value (then True)
    short: Mapping[str, str] = field(default_factory=dict)  # parameter → one-letter flag
    positional_too: str | None = None  # a flag `runbook` also takes as an optional positional

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.function) or ""

    def parameters(self) -> list[inspect.Parameter]:
        """The flags' parameters, in order (the context, first, left out); through `_exits` to the function."""
        return list(inspect.signature(self.function).parameters.values())[1:]


COMMANDS: list[Command] = []


def command(
    name: str | None = None,
    *,
    help: Mapping[str, str] | None = None,
    metavars: Mapping[str, str] | None = None,
    iterable: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    short: Mapping[str, str] | None = None,
    positional_too: str | None = None,
) -> Callable[[F], F]:
    """Register a command of the command line (the function runs under `_exits`)."""

    def register(function: F) -> F:
        wrapped = _exits(function)
        COMMANDS.append(
            Command(
                wrapped,
                name or function.__name__.strip("_"),
                dict(help or {}),
                dict(metavars or {}),
                iterable,
                optional,
                dict(short or {}),
                positional_too,
            )
        )
        return wrapped

    return register


def _exits(function: F) -> F:
    """Run a command under `error_handler`: its return value, or the error it raised, is its exit code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with error_handler():
            code = function(*args, **kwargs)
        if code:
            raise SystemExit(code)

    return wrapper  # type: ignore[return-value]


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
        traceback.print_exc()
        print("internal error: this is a bug in the runbook engine, please report it", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None


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


@command(
    help={"file": _RUNBOOK_HELP["file"], "format": _VALIDATE_FORMAT},
    metavars={"file": "FILE", "format": "text|json|github"},
)
def validate(c: object, file: str, format: str = "text") -> int:
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
    _exits(command.main)(args.files, args.format)  # ends with SystemExit when a file is invalid


@command(
    help={
        **_RUNBOOK_HELP,
        "save": "Also write the rendered plan as JSON, with its sha256, to this file.",
        "format": "text (default) or json (the document --save writes).",
    },
    metavars={**_RUNBOOK_METAVARS, "save": "FILE", "format": "text|json"},
    iterable=_ITERABLE,
)
def plan(
    c: object,
    file: str,
    var: list[str] | None = None,
    vars_file: str | None = None,
    platform: str | None = None,
    hosts: list[str] | None = None,
    target: list[str] | None = None,
    save: str | None = None,
    format: str = "text",
) -> int:
    """Dry run: every step, per host, the exact command, cwd and timeout. Nothing is executed."""
    from engine.commands import plan as command

    return command.main(_options(file, var, vars_file, platform, hosts, target), save, format)


@command(
    iterable=_ITERABLE,
    short={"output": "o"},
    metavars={
        **_RUNBOOK_METAVARS,
        "format": "md|html",
        "output": "FILE",
        "journal": "RUN_ID",
        "state-dir": "DIR",
        "paper": "auto|a4|letter",
    },
    help={
        **_RUNBOOK_HELP,
        "platform": "Show only this platform's commands for local steps (default: every variant, labelled).",
        "format": "md (Markdown task list, the default) or html (one standalone printable page).",
        "output": "Write to this file instead of standard output.",
        "journal": "Fill the checklist from this run's journal: RUN_ID, a directory under STATE_DIR/runs.",
        "state-dir": "Where runs are kept (default: $RUNBOOK_STATE_DIR or .runbook).",
        "paper": "HTML page size: auto (the printer's, default), a4 or letter.",
    },
)
def checklist(
    c: object,
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


@command(
    iterable=_ITERABLE,
    short={"output": "o"},
    metavars={**_RUNBOOK_METAVARS, "kind": "KIND", "output": "DIR"},
    help={
        **_RUNBOOK_HELP,
        "kind": "What to export to: ansible (a playbook and an inventory).",
        "platform": "Fix this machine's platform for local steps (default: chosen on the host at run time).",
        "output": "The directory to write to: playbook.yml and inventory.yml.",
        "lossy": "Export what can be expressed; write a comment at each place that cannot (default: refuse).",
    },
)
def export(
    c: object,
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


@command(
    "list",
    help={"dir": "Directory to list (default: runbooks)."},
    metavars={"dir": "DIR"},
    positional_too="dir",
)
def list_(c: object, dir: str = "runbooks") -> int:
    """List the runbooks of a directory: file, name, version, title."""
    from engine.commands import listing

    return listing.main(dir)


@command(help={"path": "Print the installed schema's file path instead (for editor settings)."})
def schema(c: object, path: bool = False) -> int:
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
    "if-still-running": "When resuming, an unknown step's first copy still runs: wait for it to end, kill it "
    "(TERM, then KILL), or leave it and stop. Without it, the operator is asked.",
    "force": "Resume even though the runbook changed since the run began.",
    "trust-new-host-keys": "Accept and remember SSH host keys not yet in known_hosts (never a changed key).",
}


_RUN_METAVARS = {
    **_RUNBOOK_METAVARS,
    "plan": "FILE",
    "only": "STEP",
    "from": "STEP",
    "state-dir": "DIR",
    "resume": "RUN_ID",
    "if-still-running": "wait|kill|leave",
}


@command(help=_RUN_HELP, metavars=_RUN_METAVARS, iterable=_ITERABLE, optional=("resume",))
def run(
    c: object,
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
    if_still_running: str | None = None,
    force: bool = False,
    trust_new_host_keys: bool = False,
) -> int:
    """Run a runbook: warnings, preflight, then every step, journaled. Exit 0/1/2/3/130."""
    from engine.commands import run as command

    which = None if resume in (None, False) else ("latest" if resume is True else str(resume))
    settings = command.RunOptions(
        yes,
        confirm_manual,
        rerun_unknown,
        plan,
        only,
        from_,
        state_dir,
        which,
        force,
        trust_new_host_keys,
        if_still_running,
    )
    return command.main(_options(file, var, vars_file, platform, hosts, target), settings)


@command(
    help={
        "run-id": "Show this run step by step (default: list every run); a unique prefix is enough.",
        "state-dir": "Where journals live (default: $RUNBOOK_STATE_DIR or ./.runbook).",
        "format": "text (default), json (one versioned document) or html (one run: a page with its timeline).",
    },
    metavars={"run-id": "RUN_ID", "state-dir": "DIR", "format": "text|json|html"},
    positional_too="run_id",
)
def runs(c: object, run_id: str | None = None, state_dir: str | None = None, format: str = "text") -> int:
    """Past runs: id, runbook, version, who, started, status; or one run, step by step and host by host."""
    from engine.commands import history

    return history.main(state_dir, run_id, format)


@command(help={"keep": "Keep the lab directory (printed) instead of deleting it."})
def demo(c: object, keep: bool = False) -> int:
    """Run runbooks/ha-rollback.yml end to end in a throwaway lab: stand-ins for rke, docker, kubectl."""
    from engine import demo as command

    return command.main(keep)


def collection() -> Collection:
    """The product's commands as invoke tasks (tasks.py adds the developer ones); imports invoke."""
    from invoke.collection import Collection

    task = _task_class()
    return Collection(
        *(
            task(
                c.function,
                name=c.name,
                help=dict(c.help),  # invoke consumes it
                iterable=list(c.iterable),
                optional=list(c.optional),
                auto_shortflags=False,
                short=c.short,
            )
            for c in COMMANDS
        )
    )


@functools.cache
def _task_class() -> Any:
    """invoke's Task, taught the one-letter flags of `Command.short` (every other flag stays long-only)."""
    from invoke.tasks import Task

    class ShortFlagTask(Task[Any]):
        def __init__(self, body: Callable[..., Any], short: Mapping[str, str], **kwargs: Any) -> None:
            super().__init__(body, **kwargs)
            self.short = short

        def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
            opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
            if name in self.short:
                opts["names"] = [*opts["names"], self.short[name]]
            return opts

    return ShortFlagTask


def _flag(parameter: inspect.Parameter) -> str:
    """The flag of a parameter, as invoke names it: `state_dir` → `state-dir`, `from_` → `from`."""
    return parameter.name.strip("_").replace("_", "-")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `runbook` command line, built from `COMMANDS`: the same flags, help and defaults as the tasks;
    with `only`, just that command's (what a command line naming it needs: the others cost start-up)."""
    import argparse

    top = argparse.ArgumentParser(
        prog="runbook",
        description="Declarative YAML runbooks: validated, planned, run locally and over SSH, or printed.",
        allow_abbrev=False,
    )
    top.add_argument("--version", action="version", version=f"runbook {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for spec in COMMANDS if only is None else [c for c in COMMANDS if c.name == only]:
        doc = spec.doc
        sub = commands.add_parser(spec.name, help=doc.split("\n\n")[0], description=doc, allow_abbrev=False)
        for parameter in spec.parameters():
            flag = _flag(parameter)
            options: dict[str, Any] = {"help": spec.help.get(flag)}
            if parameter.default is inspect.Parameter.empty:
                sub.add_argument(parameter.name, metavar=spec.metavars.get(flag, flag.upper()), **options)
                continue
            names = [*(f"-{s}" for s in [spec.short.get(parameter.name)] if s), f"--{flag}"]
            options.update(dest=parameter.name, default=parameter.default)
            if isinstance(parameter.default, bool):
                sub.add_argument(*names, action="store_true", **options)
                continue
            options["metavar"] = spec.metavars.get(flag, flag.upper())
            if parameter.name in spec.iterable:
                options["action"] = "append"
            if parameter.name in spec.optional:
                options.update(nargs="?", const=True)
            if isinstance(parameter.default, int):
                options["type"] = int
            sub.add_argument(*names, **options)
            if spec.positional_too == parameter.name:  # pyinvoke/invoke#159: invoke has no such thing
                sub.add_argument(
                    f"{_POSITIONAL}{parameter.name}",
                    nargs="?",
                    metavar=options["metavar"],
                    help=f"same as --{flag}",
                )
    return top


_POSITIONAL = "positional_"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `runbook` console script: parse with `parser()`, run the command, and leave
    without the interpreter's teardown (`_leave`) when running as the script itself (`argv` not given)."""
    script = argv is None
    # Python leaves SIGINT ignored when it starts so (`runbook run … &` from a script, nohup): Ctrl-C and
    # `kill -INT` must still stop a run, kill its commands and journal the interruption.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = list(sys.argv if argv is None else argv)
    try:
        spec, arguments = _parse(argv)
    except BrokenPipeError as error:  # argparse's own output (`runbook --help | head`)
        _quiet_stdout()
        sys.exit(exit_code(error))
    code: str | int | None = 0
    try:
        spec.function(None, **arguments)
    except SystemExit as done:  # `error_handler` ends every failing command this way
        code = done.code
    if script and not isinstance(code, str):
        _leave(code or 0)
    sys.exit(code)


def _parse(argv: list[str]) -> tuple[Command, dict[str, Any]]:
    """The command `argv` names and its keyword arguments; argparse exits 2 on a usage error."""
    line = parser(argv[1] if len(argv) > 1 and argv[1] in {c.name for c in COMMANDS} else None)
    if len(argv) < 2:
        line.print_help(sys.stderr)
        sys.exit(EXIT_INVALID)
    parsed = vars(line.parse_args(argv[1:]))
    name = parsed.pop("command")
    spec = next(c for c in COMMANDS if c.name == name)
    if spec.positional_too is not None:
        given = parsed.pop(f"{_POSITIONAL}{spec.positional_too}")
        if given is not None:
            default = next(p.default for p in spec.parameters() if p.name == spec.positional_too)
            if parsed[spec.positional_too] != default:
                line.error(f"{spec.name}: give {spec.positional_too} once, as a flag or as an argument")
            parsed[spec.positional_too] = given
    return spec, parsed


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
