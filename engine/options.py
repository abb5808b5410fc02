"""The options every runbook-reading command shares, and the path from them to a plan.

`plan`, `run` and `checklist` all go through `prepare`: one way from a file and flags to the plan.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import rules, variables
from engine import targets as targets_mod
from engine.errors import UsageError
from engine.flags import RunbookFile, option
from engine.model import PLATFORMS, Runbook
from engine.planner import build_plan
from engine.planning import Plan
from engine.transports import this_platform
from engine.validation import Validated, validate


@dataclass(frozen=True, kw_only=True)
class Options(RunbookFile):
    """The runbook, its values and its hosts: the flags `plan`, `checklist`, `export` and `run` share."""

    var: tuple[str, ...] = option(
        (), help="A variable value; repeat for several. Strongest source of values.", metavar="NAME=VALUE"
    )
    vars_file: str | None = option(
        None,
        help="A YAML file of NAME: VALUE pairs (weaker than --var, stronger than RUNBOOK_VAR_<NAME>).",
        metavar="FILE",
    )
    platform: str | None = option(
        None,
        help="Platform of this machine for local steps: linux, darwin or windows (default: this machine's).",
    )
    hosts: tuple[str, ...] = option(
        (),
        help="Override a target's hosts, e.g. nodes=host1,user@host2:2222; repeatable.",
        metavar="TARGET=HOSTS",
    )
    target: tuple[str, ...] = option(
        (),
        help="Run a target's steps on this machine instead, TARGET=local; repeatable.",
        metavar="TARGET=local",
    )
    environ: dict[str, str] | None = field(default=None, compare=False)
    recorded: dict[str, Any] | None = field(default=None, compare=False)  # values of a resumed run


def chosen_platform(value: str | None) -> str | None:
    if value is not None and value not in PLATFORMS:
        raise UsageError(f"--platform {value!r}: choose one of {', '.join(PLATFORMS)}")
    return value


def prompter() -> variables.Prompter | None:
    """Ask for missing required values only when a person is at a terminal (asked again when wrong)."""
    from engine import prompting

    return prompting.ask if sys.stdin.isatty() and sys.stderr.isatty() else None


def _again_if_refused(
    runbook: Runbook,
    ask: Callable[[], variables.Values],
    typed: frozenset[str],
    base: dict[str, Any],
    values: variables.Values,
) -> variables.Values:
    """Values typed at the terminal that a rule refuses are asked again (three tries in all), as a value the
    schema refuses is: a typo does not end the run. A rule over values given otherwise is not retyped."""
    from engine.prompting import ATTEMPTS  # only where someone types: `plan` in CI never imports it

    for attempt in range(1, ATTEMPTS):
        refused = [
            problem
            for rule, problem in rules.broken(runbook, values, {**values.values, **base})
            if rules.reads(rule) & typed
        ]
        if not refused:
            break
        for problem in refused:
            print(f"{problem.message}; type the values again ({ATTEMPTS - attempt} more)", file=sys.stderr)
        values = ask()
    return values


def prepare(
    options: Options,
    *,
    any_platform: bool = False,
    allow_missing: bool = False,
    validated: Validated | None = None,
    secrets_later: bool = False,
    paper: bool = False,
) -> tuple[Validated, Plan]:
    """Validate (unless done already), resolve values and hosts, render the plan. Nothing runs or connects.

    `paper` (checklists): a value known only at run time is a blank naming the step it comes from.

    `secrets_later` (exports): secrets are not asked for; they stay references, read where the export runs.
    """
    validated = validated or validate(Path(options.file), options.file)
    runbook = validated.runbook
    # the platform values, rules and inventories are judged on: `--platform`, else this machine's, for every
    # command alike; `any_platform` (a checklist, an export) renders every variant of a command all the same
    here = chosen_platform(options.platform) or this_platform()
    platform = None if any_platform else here
    resolve = functools.partial(
        variables.resolve,
        runbook,
        variables.parse_assignments(options.var),
        Path(options.vars_file) if options.vars_file else None,
        options.environ,
        recorded=options.recorded,
    )
    base = {"platform": here, "runbook": runbook.context()}
    asker = None if allow_missing or secrets_later else prompter()
    typed: frozenset[str] = frozenset()
    if asker is not None:  # a rule broken by the values given is said before anyone is asked for a secret
        given = resolve(prompt=None, allow_missing=True)
        rules.check(runbook, given, {**given.values, **base})
        typed = frozenset(given.missing)
    values = resolve(prompt=asker, allow_missing=allow_missing or secrets_later)
    if typed:
        values = _again_if_refused(runbook, functools.partial(resolve, prompt=asker), typed, base, values)
    if secrets_later:
        values = variables.secrets_as_references(runbook, values)
    context = {**values.values, **base}
    # before anything else: hosts, the lock, the warnings (an export refuses a rule over a secret itself)
    judged = replace(values, missing=(*values.missing, *values.secrets)) if secrets_later else values
    rules.check(runbook, judged, context)
    resolved = targets_mod.resolve(
        runbook,
        context,
        targets_mod.parse_overrides(list(options.hosts), "--hosts"),
        targets_mod.parse_overrides(list(options.target), "--target"),
    )
    rules.check(runbook, judged, context, resolved)  # the rules over the targets' hosts and inventories
    return validated, build_plan(
        runbook, values, platform, resolved, allow_missing=allow_missing, paper=paper
    )
