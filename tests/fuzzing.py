"""Hostile runbooks for the fuzz tests (`tests/test_fuzz.py`, and `invoke fuzz` for long runs).

Start from a small valid runbook and break it the way people and accidents do: schema keywords that are
themselves malformed, regular expressions that do not compile (or backtrack), durations, templates, deep
nesting, anchors and aliases, duplicate keys, tabs, truncation. Standalone apart from hypothesis.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

BASE: dict[str, Any] = {
    "runbook": 1,
    "name": "fuzzed",
    "version": "1",
    "title": "Fuzzed",
    "variables": {
        "release": {"type": "string", "pattern": "^[a-z0-9-]+$", "default": "r1"},
        "count": {"type": "integer", "minimum": 1, "default": 2},
    },
    "targets": {"nodes": {"ssh": {"hosts": ["admin@10.0.0.1", "10.0.0.2:2222"]}}},
    "steps": [
        {"id": "first", "title": "First", "run": "echo {{ release }}", "timeout": "30s"},
        {"id": "second", "title": "Second", "on": "nodes", "run": "docker ps | grep x", "retries": 1},
        {"id": "third", "title": "Third", "manual": "Look at {{ host.name if host else 'it' }}"},
    ],
}

KEYWORDS = st.sampled_from(
    ["type", "pattern", "minLength", "maxLength", "enum", "format", "minimum", "const"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["strin", "", "(", "[z-a]", "(?P<", "\\", "x" * 300, "1e9h", "-1s", "10x", "0s"]),
)
REGEXES = st.sampled_from(["(", ")", "[", "a{2,1}", "(?<=a+)b", "\\", "(a|", "*", "(?P<x>a)(?P<x>b)", "^$"])
DURATIONS = st.one_of(
    st.sampled_from(["10x", "-1s", "1e9h", "", "s", "1.5.5m", "99999999999999999999h", "0"]),
    st.integers(min_value=-(2**64), max_value=2**64),
)
TEMPLATES = st.sampled_from(
    [
        "{{",
        "{{ }}",
        "{% for x in y %}",
        "{{ x.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ steps.nope.stdout }}",
        "{{ 1 / 0 }}",
        "{{ range(10**9) | list }}",
        "{{ release | nofilter }}",
        "{{ .Values.x }}",
        "{% raw %}",
        "{{ release[0:] * 10**9 }}",
    ]
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


VALUES = st.one_of(
    SCALARS,
    REGEXES,
    DURATIONS,
    TEMPLATES,
    st.integers(min_value=1, max_value=120).map(nested),
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value can be put (its mappings' keys, its lists' items)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def put(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    try:
        parent = copy
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):  # an earlier mutation took that place away
        return document
    return copy


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A runbook's text, broken in one to three places, as values and then as text."""
    document: Any = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 3))):
        places = paths(document)
        path = draw(st.sampled_from(places))
        if draw(st.booleans()) and path and isinstance(path[-1], str):  # a keyword beside a value
            path = (*path[:-1], draw(st.one_of(KEYWORDS, st.just(path[-1]), st.text(min_size=1, max_size=8))))
        document = put(document, path, draw(VALUES))
        if draw(st.booleans()) and isinstance(document, dict):  # a broken schema keyword with a default
            keyword, value = draw(KEYWORDS), draw(VALUES)
            document = put(document, ("variables", "release"), {keyword: value, "default": draw(SCALARS)})
    text = json.dumps(document, ensure_ascii=False, indent=1, allow_nan=True)  # JSON is YAML
    return draw(st.one_of(st.just(text), text_mutations(text)))


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    kind = draw(st.sampled_from(["truncate", "alias", "tab", "duplicate", "bytes", "bomb"]))
    at = draw(st.integers(0, len(text)))
    if kind == "truncate":
        return text[:at]
    if kind == "alias":
        return "a: &x [1]\nb: *x\n" + text if draw(st.booleans()) else text[:at] + " *x " + text[at:]
    if kind == "tab":
        return text[:at] + "\n\t" + text[at:]
    if kind == "duplicate":
        return text.replace('"name"', '"name": "again", "name"', 1)
    if kind == "bytes":
        return text[:at] + draw(st.text(max_size=6)) + text[at:]
    levels = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(levels) + "\n"
