"""Each flag is declared once, as a field of an option dataclass (`engine.flags`), and both front ends — the
`runbook` argparse parser and the invoke tasks — are generated from those fields: they offer the same flags,
with the same help, and turn the same command line into the same options."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from invoke.parser import Parser, ParserContext

from engine import cli, flags
from engine.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def _tasks() -> Any:
    """The collection `invoke` reads: tasks.py's, the product's commands and the developers' own."""
    import tasks

    return tasks.ns


def _argparse_flags(command: cli.Command) -> dict[str, str | None]:
    """Each option string of `runbook COMMAND` (positionals by their dest) and its help."""
    sub = cli.parser(command.name)._subparsers._group_actions[0].choices[command.name]  # type: ignore[union-attr]
    found: dict[str, str | None] = {}
    for action in sub._actions:
        if action.dest == "help" or action.dest.startswith(flags.POSITIONAL):
            continue
        for name in action.option_strings or [action.dest]:
            found[name] = action.help
    return found


def _invoke_flags(task: Any) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for argument in task.get_arguments():
        if argument.positional:
            found[argument.attr_name or argument.names[0]] = argument.help
            continue
        for name in argument.names:
            found[f"--{name}" if len(name) > 1 else f"-{name}"] = argument.help
    return found


def _declared(command_options: tuple[type, ...]) -> dict[str, str | None]:
    """What the option fields declare: each flag (positionals by field) and its help."""
    found: dict[str, str | None] = {}
    for options in command_options:
        for spec in flags.specs(options):
            for name in [spec.field] if spec.flag.positional else spec.names:
                assert name not in found, f"{name} declared twice"
                found[name] = spec.flag.help
    return found


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_both_front_ends_offer_exactly_the_declared_flags_with_their_help(command: cli.Command) -> None:
    declared = _declared(command.options())
    assert _argparse_flags(command) == declared
    assert _invoke_flags(_tasks()[command.name]) == declared


def test_every_invoke_task_takes_its_flags_from_option_fields() -> None:
    """The developers' tasks too: a task declared with invoke's `@task(help=…)` (flags spelled in a help dict
    and again as parameters) has arguments no option field declares."""
    ns = _tasks()
    assert set(ns.task_names) >= {c.name for c in cli.COMMANDS} | {"bench", "fuzz", "lint", "torture"}
    for name in ns.task_names:
        task = ns[name]
        options = getattr(task, "options", None)
        assert options is not None, f"task {name} is not generated from option dataclasses"
        assert _invoke_flags(task) == _declared(options), name


def test_no_module_declares_a_flag_by_hand() -> None:
    """argparse's `add_argument` is called in `engine.flags` only (and for `runbook --version`, the program's
    own flag, not a command's), and no task uses invoke's `@task`."""
    for path in [*sorted((ROOT / "engine").rglob("*.py")), ROOT / "tasks.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                first = ast.literal_eval(node.args[0]) if isinstance(node.args[0], ast.Constant) else None
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                assert path == ROOT / "engine" / "flags.py" or first == "--version", where
            if isinstance(node, ast.Name) and node.id == "task" and path.name == "tasks.py":
                raise AssertionError(
                    f"tasks.py:{node.lineno}: invoke's @task; use engine.flags.developer_task"
                )


def test_no_two_option_fields_share_a_help_text() -> None:
    """A flag copied into a second dataclass (rather than inherited) is declared twice: its help shows it."""
    seen: dict[str, flags.Flag] = {}
    everything = [o for c in cli.COMMANDS for o in c.options()]
    for task in (_tasks()[name] for name in ("bench", "fuzz", "lint", "torture")):
        everything += task.options
    for options in everything:
        for spec in flags.specs(options):
            other = seen.setdefault(spec.flag.help, spec.flag)
            assert other is spec.flag, f"{options.__name__}.{spec.field}: the help of another field"


LINES = [
    ["validate", "book.yml", "--format", "json"],
    ["plan", "book.yml", "--var", "a=1", "--var", "b=2", "--hosts", "web=h1,h2", "--save", "p.json"],
    ["checklist", "book.yml", "-o", "out.html", "--format", "html", "--paper", "a4", "--journal", "r1"],
    ["export", "ansible", "book.yml", "-o", "dir", "--lossy", "--target", "web=local"],
    [
        "run",
        "book.yml",
        "--yes",
        "--from",
        "s2",
        "--plan",
        "p.json",
        "--if-still-running",
        "kill",
        "--resume",
    ],
    ["run", "book.yml", "--resume", "r-123", "--state-dir", "st", "--trust-new-host-keys"],
    ["runs", "--run-id", "r1", "--format", "json"],
    ["list", "--dir", "elsewhere"],
    ["schema", "--path"],
    ["demo", "--keep"],
]


def _by_runbook(argv: list[str]) -> tuple[Any, ...]:
    command, given = cli._parse(["runbook", *argv])
    return tuple(flags.build(o, given, command.name) for o in command.options())


def _by_invoke(argv: list[str]) -> tuple[Any, ...]:
    command = next(c for c in cli.COMMANDS if c.name == argv[0])
    context = ParserContext(name=command.name, args=_tasks()[command.name].get_arguments())
    (parsed,) = Parser(contexts=[context]).parse_argv(argv)
    keys = parsed.as_kwargs
    given = {s.field: keys[s.invoke_key] for o in command.options() for s in flags.specs(o)}
    return tuple(flags.build(o, given, command.name) for o in command.options())


@pytest.mark.parametrize("argv", LINES, ids=lambda a: " ".join(a))
def test_the_same_command_line_gives_the_same_options_through_either_front_end(argv: list[str]) -> None:
    assert _by_runbook(argv) == _by_invoke(argv)


def test_resume_without_a_value_is_the_latest_run_through_either_front_end() -> None:
    for options in (_by_runbook(LINES[4]), _by_invoke(LINES[4])):
        assert options[1].resume == "latest" and options[1].if_still_running == "kill"


@pytest.mark.parametrize("read", [_by_runbook, _by_invoke], ids=["runbook", "invoke"])
def test_a_value_outside_the_choices_is_refused_the_same_way(read: Any) -> None:
    with pytest.raises(UsageError, match=r"^--if-still-running 'maybe': choose one of wait, kill, leave$"):
        read(["run", "book.yml", "--if-still-running", "maybe"])
    with pytest.raises(UsageError, match=r"^export 'pdf': choose one of ansible$"):
        read(["export", "pdf", "book.yml"])
