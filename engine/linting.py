"""Static checks of every template in a runbook, before any value is known.

An undefined name, a sandbox escape, a Go template that jinja would choke on, or `steps.<id>` naming a
step that has not run yet is an error at validation time, at its line: nobody should learn about a typo
halfway through a rollback. `| raw` is legal but flagged, since it turns quoting off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jinja2
from jinja2 import nodes
from jinja2.sandbox import UNSAFE_FUNCTION_ATTRIBUTES, UNSAFE_METHOD_ATTRIBUTES

from engine import bounds, doublequoted, programs, result_reads
from engine.errors import Problem
from engine.grouping import flat, unit
from engine.model import Command, Runbook, Step, Template
from engine.rendering import environment, every_node, names_used, parse, template_problem, whole_reference
from engine.using import unit_ids

_GO_TEMPLATE = re.compile(r"\{\{-?\s*\.")
_UNSAFE = UNSAFE_FUNCTION_ATTRIBUTES | UNSAFE_METHOD_ATTRIBUTES | {"mro", "gi_frame", "cr_frame"}
# Methods that change a list, dict or set: the immutable sandbox refuses them (`x.append(1)`) when rendering.
_MUTATING = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "reverse",
        "sort",
        "clear",
        "popitem",
        "setdefault",
        "update",
        "add",
        "discard",
        "difference_update",
        "symmetric_difference_update",
        "appendleft",
        "extendleft",
        "popleft",
        "rotate",
    }
)


@dataclass(frozen=True)
class _Site:
    """One template and what it may refer to."""

    template: Template
    names: frozenset[str]
    shell: bool = False
    expression: bool = False
    earlier_steps: frozenset[str] = frozenset()


def lint(runbook: Runbook) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) over every template of the runbook."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    secrets = frozenset(v.name for v in runbook.variables if v.secret)
    for site in _sites(runbook):
        for problem, is_warning in _check(site):
            (warnings if is_warning else errors).append(problem)
        if secrets and not site.shell and site.template.path[-1] != "assert":  # a rule shows only its message
            errors += _secrets_outside_run(site, secrets)
        elif secrets:
            warnings += _secrets_as_arguments(site, secrets)
    return errors, warnings


_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def _secrets_as_arguments(site: _Site, secrets: frozenset[str]) -> Iterator[Problem]:
    """A secret in `run` reaches the command as `"${RUNBOOK_SECRET_…}"`, which the shell expands into the
    argument list of the program that gets it: `ps` on the host shows it there to every user."""
    for name in sorted(secrets):
        marker = f"@RUNBOOK_SECRET_{name}@"
        marked = _EXPRESSION.sub(_marking(name, marker), site.template.text)
        for program in dict.fromkeys(programs.argument_receivers(marked, marker)):
            yield template_problem(
                site.template,
                f"warning: secret {name!r} is an argument of {program!r}: while it runs, `ps` on the host "
                f"shows it to every user; give it on standard input (`printf '%s\\n' {{{{ {name} }}}} | "
                f"{program} …`, if {program} reads it there) or in the environment "
                f"(`env: {{VAR: '{{{{ {name} }}}}'}}`)",
            )


def _marking(name: str, marker: str) -> Callable[[re.Match[str]], str]:
    """`{{ … }}` that reads `name` → `marker`; any other expression → a plain value; `{% … %}` → nothing."""

    def mark(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("{%"):
            return ""
        try:
            return marker if name in names_used(text) else "$V"
        except jinja2.TemplateSyntaxError:  # reported by the template checks
            return "$V"

    return mark


def _secrets_outside_run(site: _Site, secrets: frozenset[str]) -> Iterator[Problem]:
    """A secret reaches a command only through its environment; anywhere else it would be shown or stored."""
    text = "{{ " + site.template.text + " }}" if site.expression else site.template.text
    if site.template.path[-2:-1] == ("env",) and whole_reference(text) in secrets:
        return  # `env: {TOKEN: "{{ token }}"}`: passed to the command like a secret in `run`
    if site.template.path[-1] == "when":
        return  # a condition shows no value: only its text is ever printed ("when: … is false")
    try:
        used = names_used(text) & secrets
    except jinja2.TemplateSyntaxError:
        return
    for name in sorted(used):
        message = (
            f"secret {name!r} can only be used in 'run', or alone as an 'env' value (it reaches the "
            "command through its environment); here its value would be shown or stored"
        )
        yield template_problem(site.template, message)


def _sites(runbook: Runbook) -> Iterator[_Site]:
    base = frozenset(v.name for v in runbook.variables) | {"platform", "runbook"}
    for target in runbook.targets:
        names = base | {"omit"}
        if inv := target.inventory:
            yield _Site(inv.from_file, base)
            names |= {"item", "inventory"}
            yield _Site(inv.host, names)
            if inv.where is not None:
                yield _Site(inv.where, names, expression=True)
            if inv.name is not None:
                yield _Site(inv.name, names)
        for template in (*target.hosts, *target.reach.templates(), *target.jump.templates()):
            yield _Site(template, names)
    for rule in runbook.rules:  # a rule may read the targets' hosts and inventories (`targets`)
        yield _Site(rule.condition, base | {"targets"}, expression=True)
        yield _Site(rule.message, base | {"targets"})
    for check in runbook.checks:
        yield from _command_sites(check.run, base | {"host"}, frozenset())
        if check.cwd:
            yield _Site(check.cwd, base | {"host"})
    earlier: frozenset[str] = frozenset()
    for step, added in flat(runbook.steps):  # a group's steps read its item and `batch` too
        names = base | {"host", "steps"} | added
        if step.loop is not None:
            names |= {step.loop.var}
            if step.loop.expression is not None:  # known before the run: the plan lists the items
                yield _Site(step.loop.expression, base, expression=True)
        yield from _step_sites(step, names, earlier)
        if step.use is not None:  # rendered at plan time, to fill the used runbook's values
            given = base | ({step.loop.var} if step.loop else set())  # per item of its loop
            yield from (_Site(v, given) for _, v in step.use.with_ if isinstance(v, Template))
        earlier |= set(unit_ids(step))


def _command_sites(command: Command, names: frozenset[str], earlier: frozenset[str]) -> Iterator[_Site]:
    for _, template in command.variants:
        yield _Site(template, names, shell=True, earlier_steps=earlier)


def _step_sites(step: Step, names: frozenset[str], earlier: frozenset[str]) -> Iterator[_Site]:
    if step.run:
        yield from _command_sites(step.run, names, earlier)
    texts = [
        step.cwd,
        step.manual,
        step.record.prompt if step.record else None,
        step.record.equals if step.record else None,
        step.confirm.question if step.confirm else None,
        step.confirm.typed if step.confirm else None,
        *(value for _, value in step.env),
    ]
    for template in texts:
        if template is not None:
            yield _Site(template, names, earlier_steps=earlier)
    if step.result:  # shown once the step has run: its own output is known by then
        yield _Site(step.result, names, earlier_steps=earlier | {step.id})
    if step.when:
        yield _Site(step.when, names, expression=True, earlier_steps=earlier)
    if step.until:  # judged after each attempt: its `result`, and the outputs of the steps before it
        yield _Site(step.until, names | {"result"}, expression=True, earlier_steps=earlier)


def _check(site: _Site) -> Iterator[tuple[Problem, bool]]:
    template = site.template
    text = template.text
    if site.expression:
        if "{{" in text or "{%" in text:
            key = template.path[-1]
            yield template_problem(template, f"'{key}' is a bare expression: remove the {{{{ }}}}"), False
            return
        text = "{{ " + text + " }}"
    hyphenated = list(_hyphenated(site, text))
    if hyphenated:  # `steps.find-container` reads as `steps.find - container`: every other message is noise
        yield from ((p, False) for p in hyphenated)
        return
    if "{" not in text:
        return  # plain text (no `{{`, `{%` or `{#`): jinja would find nothing in it to check
    try:
        ast = parse(text)
    except jinja2.TemplateSyntaxError as error:
        yield _syntax(template, error), False
        return
    every = every_node(text)
    yield from ((p, False) for p in _undefined(site, every, text))
    yield from ((p, False) for p in _unsafe(template, every))
    yield from ((p, False) for p in _step_references(site, every))
    if names_used(text) & {"steps", "result"}:
        yield from ((p, False) for p in result_reads.unknown_fields(site.template, ast))
    if _COUNTS.search(text):  # without a number (or lipsum) written, nothing constant builds much
        yield from ((p, False) for p in _too_large(template, ast))
    if site.shell:
        for line, expression in doublequoted.found(text):
            message = (
                f"warning: {{{{ {expression} }}}} stands inside quotes, but a value is quoted for the shell "
                "already: a value with a space or a quote keeps those quotes as text "
                f'("a={{{{ x }}}}" gives "a=\'my value\'"); leave the quotes out (a={{{{ x }}}} is one word '
                "all the same)"
            )
            yield template_problem(template, message, line), True
        for node in every:
            if isinstance(node, nodes.Filter) and node.name == "raw":
                message = "warning: '| raw' inserts the value unquoted; be sure it cannot carry shell syntax"
                yield template_problem(template, message, node.lineno), True


_HYPHENATED = re.compile(r"\bsteps\.([a-z0-9][a-z0-9_]*(?:-[a-z0-9_]+)+)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")


def _hyphenated(site: _Site, text: str) -> Iterator[Problem]:
    """`steps.<id-with-hyphens>` naming an earlier step: jinja reads the `-` as a minus; say how to write it."""
    for match in _HYPHENATED.finditer(text):
        step_id, rest = match.group(1), match.group(2)
        if step_id in site.earlier_steps:
            line = text.count("\n", 0, match.start()) + 1
            message = (
                f"steps.{step_id}{rest}: jinja reads '-' as a minus; "
                f"write steps['{step_id}']{rest} for a step id with hyphens"
            )
            yield template_problem(site.template, message, line)


def _syntax(template: Template, error: jinja2.TemplateSyntaxError) -> Problem:
    lines = template.text.splitlines() or [""]
    line_text = lines[min(error.lineno, len(lines)) - 1]
    if _GO_TEMPLATE.search(line_text) or _GO_TEMPLATE.search(template.text):
        message = (
            "this looks like a Go/docker template ({{.Field}}); jinja reads {{ }} too: "
            "wrap it in {% raw %}…{% endraw %}"
        )
    else:
        message = f"template syntax error: {error.message}"
    return template_problem(template, message, error.lineno)


def _undefined(site: _Site, every: tuple[nodes.Node, ...], text: str) -> Iterator[Problem]:
    known = site.names | set(environment(False).globals)
    for name in sorted(names_used(text) - known):
        import difflib  # only for an error's suggestion (~2 ms of every start)

        close = difflib.get_close_matches(name, sorted(site.names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        line = next((n.lineno for n in every if isinstance(n, nodes.Name) and n.name == name), 1)
        yield template_problem(site.template, f"undefined name {name!r}{hint}", line)


def _unsafe(template: Template, every: tuple[nodes.Node, ...]) -> Iterator[Problem]:
    for node in every:
        if not isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Filter)):
            continue
        for attr in _attributes(node):
            mutating = (
                isinstance(node, nodes.Getattr) and attr in _MUTATING and not result_reads.names_a_key(node)
            )
            if attr.startswith("_") or attr in _UNSAFE or mutating:
                message = (
                    f"{attr!r} changes a value in place, which is not allowed in the sandbox"
                    if mutating
                    else f"access to {attr!r} is not allowed in the sandbox"
                )
                yield template_problem(template, message, node.lineno)


_COUNTS = re.compile(r"[0-9]|lipsum")
_BUILDING = (nodes.BinExpr, nodes.Call, nodes.Filter, nodes.Concat)
_CONSTANT_CALLS = frozenset({"lipsum", "range"})


def _too_large(template: Template, ast: nodes.Template) -> Iterator[Problem]:
    """`{{ 'x' * 10**9 }}`, `lipsum(10**6)`: an expression over constants that builds more than the bounds
    allow is refused now, by evaluating it in the same bounded sandbox (it is refused as soon as it would
    build too much, so this costs nothing). One that reads a value is checked when it is rendered."""
    for node in _constant_parts(ast):
        try:
            environment(False).from_string(nodes.Template([nodes.Output([node])], lineno=1)).render()
        except bounds.TooLarge as error:
            yield template_problem(template, f"too large: {error}", node.lineno)
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError):
            continue  # any other error is the render's to report, with the values


def _constant_parts(ast: nodes.Template) -> Iterator[nodes.Node]:
    """The outermost expressions that can build something (an operator, a call, a filter) and read no value:
    one walk marks the nodes that read a name, a second yields the outermost building nodes that do not."""
    reads: dict[int, bool] = {}

    def mark(node: nodes.Node) -> bool:
        found = isinstance(node, nodes.Name) and node.name not in _CONSTANT_CALLS
        for child in node.iter_child_nodes():
            found = mark(child) or found
        reads[id(node)] = found
        return found

    def outermost(node: nodes.Node) -> Iterator[nodes.Node]:
        for child in node.iter_child_nodes():
            if isinstance(child, _BUILDING) and not reads[id(child)] and not _blank_filter(child):
                yield child
            else:
                yield from outermost(child)

    mark(ast)
    return outermost(ast)


def _blank_filter(node: nodes.Node) -> bool:
    """`{% filter upper %}`: a filter without an expression of its own."""
    return isinstance(node, nodes.Filter) and node.node is None


def _attributes(node: nodes.Node) -> list[str]:
    """Attribute names a node reads: `x.a`, `x['a']`, `x | attr('a')`, `x | map(attribute='a')`."""
    if isinstance(node, nodes.Getattr):
        return [node.attr]
    if isinstance(node, nodes.Getitem):
        return [name] if (name := _const(node.arg)) is not None else []
    assert isinstance(node, nodes.Filter)
    found = [_const(node.args[0])] if node.name == "attr" and node.args else []
    found += [_const(kw.value) for kw in node.kwargs if kw.key == "attribute"]
    return [name for name in found if name is not None]


def _step_references(site: _Site, every: tuple[nodes.Node, ...]) -> Iterator[Problem]:
    for node in every:
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue
        owner = node.node
        if not (isinstance(owner, nodes.Name) and owner.name == "steps"):
            continue
        ref = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if ref is not None and ref not in site.earlier_steps and unit(ref) not in site.earlier_steps:
            message = f"steps.{ref}: no earlier step has id {ref!r} (only steps that ran before can be read)"
            yield template_problem(site.template, message, node.lineno)


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None
