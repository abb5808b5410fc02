"""What a template reads of the steps that ran, checked before the run: `steps.<id>` then a field of
`results.StepResult` (`steps.a.stdot` is a typo, said at validation), and `steps.rotate` is a step id, not
the list method a mutating-name check would refuse.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, nodes

from engine.errors import Problem
from engine.model import Step, Template
from engine.rendering import parse, template_problem


def names_a_key(node: nodes.Getattr) -> bool:
    """`steps.rotate`, `steps.a.hosts.pop`: a step id or a host name, which `results.Named` reads as a key."""
    return _kind(node.node) in ("steps", "hosts")


def _kind(node: nodes.Node) -> str | None:
    """What a node reads of `steps`: "steps", a "step" (its result, or one of its `items`), its "hosts", one
    "host", its "items"; of an `until`'s `result`: an "attempt"; None for anything else (a value)."""
    if isinstance(node, nodes.Name):
        return {"steps": "steps", "result": "attempt"}.get(node.name) if node.ctx == "load" else None
    if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return None
    owner, key = _kind(node.node), _key(node)
    if owner == "items" and isinstance(node, nodes.Getitem):
        return "step"
    if owner == "step" and key in ("hosts", "items"):
        return key
    return {"steps": "step", "hosts": "host"}.get(owner or "") if key is not None else None


_WHOSE = {"step": "a step's", "host": "a host's", "attempt": "an attempt's"}


def unknown_fields(template: Template, ast: nodes.Template) -> Iterator[Problem]:
    """`steps.a.stdot`: a step's result, a host's and an attempt's have the fields `results` gives them."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        owner, key = _kind(node.node), _key(node)
        known = _fields(owner)
        if known is None or key is None or key in known:
            continue
        import difflib  # only for an error's suggestion (~2 ms of every start)

        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"it has {', '.join(sorted(known))}"
        message = f"{_shown(node)}: {_WHOSE[owner or '']} result has no {key!r}; {hint}"
        yield template_problem(template, message, node.lineno)


def _fields(owner: str | None) -> frozenset[str] | None:
    """The fields of what `owner` names, if it is a result; `results` is imported only by a template that reads
    one (its dataclasses cost ~2 ms to create)."""
    if owner not in _WHOSE:
        return None
    from engine import results

    return {"step": results.STEP_FIELDS, "host": results.HOST_FIELDS, "attempt": results.ATTEMPT_FIELDS}[
        owner
    ]


def _shown(node: nodes.Node) -> str:
    """`steps.a.items[0].stdot` as written (near enough: a key in brackets is shown quoted)."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_shown(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_shown(node.node)}[{node.arg.value!r}]"
    return "…"


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    return node.arg.value if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) else None


def steps_read(step: Step) -> frozenset[str]:
    """The ids of the steps whose results `step`'s templates read (`steps.<id>`, `steps['<id>']`): a run
    that leaves those out (`--from`, `--only`) could not render it."""
    from engine.planning import operator_texts  # run time only: `validate` imports no planning module

    texts = [*(t for _, t in (step.run.variants if step.run else ())), *(v for _, v in step.env), step.cwd]
    texts += operator_texts(step)
    found = {key for t in texts if t is not None for key in _read_ids(t.text)}
    for expression in (step.when, step.until):
        if expression is not None:
            found.update(_read_ids("{{ " + expression.text + " }}"))
    return frozenset(found - {step.id})


def _read_ids(text: str) -> Iterator[str]:
    if "steps" not in text:
        return
    try:
        ast = parse(text)
    except TemplateSyntaxError:
        return
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        if _kind(node.node) == "steps" and (key := _key(node)) is not None:
            yield key
