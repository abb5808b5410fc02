"""The schema is valid JSON Schema, the authoring guide documents all of it, and the shipped runbook uses it;
the Markdown pages hold together: the README's tour prints what the commands print, every relative link and
anchor resolves, and CONTRIBUTING.md's code map names every module of the engine."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from engine import schema
from engine.validation import validate
from runbooks import in_process

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas/runbook-v1.schema.json"
ROLLBACK = ROOT / "runbooks/ha-rollback.yml"


def schema_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object reachable from `node`: properties, $defs, items, combinators…"""
    if not isinstance(node, dict):
        return
    yield node
    for key in ("properties", "$defs", "dependentSchemas"):
        for child in node.get(key, {}).values():
            yield from subschemas(child)
    for key in ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else"):
        yield from subschemas(node.get(key))
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for child in node.get(key, []):
            yield from subschemas(child)


def property_names() -> set[str]:
    return {name for node in subschemas(schema_data()) for name in node.get("properties", {})}


def authoring_guide() -> str:
    """docs/authoring.md, the whole page: the guide has a page of its own."""
    return (ROOT / "docs/authoring.md").read_text(encoding="utf-8")


def test_the_schema_is_valid_against_the_2020_12_metaschema() -> None:
    data = schema_data()
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(data)
    # with format checks too: every `pattern` in it is a valid regular expression
    metaschema = jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert [e.message for e in metaschema.iter_errors(data)] == []


def test_the_engine_reads_the_schema_file_that_is_shipped() -> None:
    assert schema.schema() == schema_data()


def test_every_property_has_a_description() -> None:
    missing = [
        f"{name}"
        for node in subschemas(schema_data())
        for name, child in node.get("properties", {}).items()
        if isinstance(child, dict) and "description" not in child and "$ref" not in child
    ]
    assert missing == []


def test_the_authoring_guide_documents_every_property_of_the_schema() -> None:
    names = property_names()
    assert {
        "runbook",
        "from_file",
        "key_file",
        "stdout_matches",
        "max_failed_hosts",
        "exclusiveMinimum",
    } <= names
    guide = authoring_guide()
    undocumented = sorted(name for name in names if f"`{name}`" not in guide)
    assert undocumented == []


def test_the_shipped_runbook_validates() -> None:
    validated = validate(ROLLBACK, "runbooks/ha-rollback.yml")
    assert validated.warnings == ()
    assert validated.runbook.name == "rancher-ha-rollback"


def test_the_shipped_runbook_points_editors_at_the_schema() -> None:
    first = ROLLBACK.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, first
    assert (ROLLBACK.parent / match.group(1)).resolve() == SCHEMA_FILE.resolve()


def test_the_guides_first_example_is_a_valid_runbook(tmp_path: Path) -> None:
    example = re.search(r"^## A first runbook\n.*?```yaml\n(.*?)```", authoring_guide(), re.M | re.S)
    assert example, "the guide has no first example"
    path = tmp_path / "example.yml"
    path.write_text(example.group(1), encoding="utf-8")
    validated = validate(path)
    assert [step.id for step in validated.runbook.steps] == ["restart", "look"]


def test_every_definition_has_a_title_and_every_description_its_markdown() -> None:
    data = schema_data()
    assert [name for name, node in data["$defs"].items() if "title" not in node] == []
    described = [node for node in subschemas(data) if "description" in node]
    assert [n["description"] for n in described if "markdownDescription" not in n] == []
    assert [
        n["description"] for n in described if "`" in n["description"]
    ] == []  # plain text for plain clients


def test_the_schemas_own_messages_read_as_sentences_about_the_value() -> None:
    """`runbook validate` prints them as "'x' is not a …", editors as they are."""
    said = [
        node[key]
        for node in subschemas(schema_data())
        for key in ("patternErrorMessage", "errorMessage")
        if key in node
    ]
    assert len(said) >= 5
    assert [text for text in said if not (text.startswith("Not ") and text.endswith("."))] == []


def fill(body: Any) -> Any:
    """A snippet body with each `${n:placeholder}` replaced by its placeholder (and `\\$` by `$`)."""
    if isinstance(body, dict):
        return {k: fill(v) for k, v in body.items()}
    if isinstance(body, list):
        return [fill(v) for v in body]
    if isinstance(body, str):
        return re.sub(r"\$\{\d+:([^}]*)\}", r"\1", body).replace("\\$", "$")
    return body


def test_snippets_and_examples_are_valid_where_they_are_offered() -> None:
    data = schema_data()
    checked = 0
    for name, node in data["$defs"].items():
        validator = jsonschema.Draft202012Validator({**node, "$defs": data["$defs"]})
        for value in [fill(s["body"]) for s in node.get("defaultSnippets", [])] + node.get("examples", []):
            assert [e.message for e in validator.iter_errors(value)] == [], (name, value)
            checked += 1
    labels = {s["label"] for node in data["$defs"].values() for s in node.get("defaultSnippets", [])}
    assert {"command step", "manual step", "variable", "SSH target"} <= labels
    assert checked >= 15


def test_the_schema_claims_no_address_it_is_not_served_at() -> None:
    assert "$id" not in schema_data()


def test_every_reliability_row_names_a_test_that_exists() -> None:
    """docs/reliability.md: each row's tests are `tests/FILE.py::test_name` of a test function defined there."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Bad input")
    ]
    rows = [row for row in rows if not row.startswith("| Fault")]
    named = [ref for row in rows for ref in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row)]
    assert len(named) >= 30 and all(re.search(r"`tests/\S+::\w+`", row) for row in rows)
    missing = []
    for file, name in named:
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if name not in defined:
            missing.append(f"{file}::{name}")
    assert missing == []


# -- the Markdown pages ------------------------------------------------------------------------------------------

PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "runbooks/README.md",
    ROOT / "benchmarks/README.md",
    *sorted(ROOT.glob("docs/*.md")),
]
SHOWN_HOME = "/home/you"  # the README's plan shows key paths under this home; the test plans with its own


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def shown_commands(text: str) -> dict[str, tuple[list[str], str]]:
    """Each `console` block of a page: its `$ runbook VERB …` line and the output shown under it, by verb."""
    blocks = re.findall(r"^```console\n\$ runbook ([^\n]*)\n(.*?)^```", text, re.M | re.S)
    return {shlex.split(line)[0]: (shlex.split(line), output) for line, output in blocks}


def cli(argv: list[str], cwd: Path, home: Path) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    done = in_process(argv, cwd, {**environ, "HOME": str(home)})
    return done.returncode, done.stdout + done.stderr


def test_the_readme_shows_the_validate_errors_that_validate_prints(tmp_path: Path) -> None:
    example = re.search(r"^```yaml\n(# (\S+\.yml)[^\n]*\n.*?)^```", readme(), re.M | re.S)
    assert example, "the README's tour has no broken runbook (a yaml block whose first line names its file)"
    (tmp_path / example.group(2)).write_text(example.group(1), encoding="utf-8")
    argv, shown = shown_commands(readme())["validate"]
    assert argv == ["validate", example.group(2)]
    code, printed = cli(argv, tmp_path, tmp_path)
    assert code == 2
    assert printed == shown
    assert len(shown.splitlines()) >= 5


def test_the_readme_shows_the_plan_that_plan_prints(tmp_path: Path) -> None:
    argv, shown = shown_commands(readme())["plan"]
    assert argv[:2] == ["plan", "runbooks/ha-rollback.yml"]
    code, printed = cli(argv, ROOT, tmp_path)
    assert code == 0

    def steady(text: str) -> str:  # what truly varies: the home directory and the runbook's digest
        return re.sub(r"sha256 [0-9a-f]{16}…", "sha256 …", text.replace(str(tmp_path), SHOWN_HOME))

    assert steady(printed) == steady(shown)
    assert f"key {SHOWN_HOME}/.ssh/rke_node2" in shown and "restart-components" in shown


def headings(text: str, levels: str = "#{1,6}") -> list[str]:
    """The headings of a Markdown page (of the levels given), outside code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(levels + " ", line):
            found.append(line.lstrip("#").strip())
    return found


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated one suffixed -1, -2…"""
    found: set[str] = set()
    for heading in headings(text):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:  # bounded: at most one turn per heading before it
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def links(text: str) -> list[str]:
    """Every Markdown link target of a page, outside code blocks and code spans."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\]\(([^)\s]+)\)", prose)


def test_anchors_are_githubs() -> None:
    assert anchors("# A\n## Journal, resume, history\n## `ha-rollback.yml` and more\n## A\n") == {
        "a",
        "a-1",
        "journal-resume-history",
        "ha-rollbackyml-and-more",
    }


def test_every_relative_link_of_the_pages_points_at_a_file_and_a_heading_there() -> None:
    broken, checked = [], 0
    for page in PAGES:
        for target in links(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            checked += 1
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such file")
            elif anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such heading")
    assert broken == []
    assert checked >= 40


def test_each_docs_page_starts_with_its_table_of_contents() -> None:
    """Before its first section, each page lists its sections (`##`), in order, each linked to its anchor."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        toc = re.search(r"^(?:- \[[^\n]*\]\(#[^)]*\)\n)+", text, re.M)
        assert toc and toc.start() < text.index("\n## "), page
        entries = re.findall(r"^- \[([^\n]*)\]\(#([^)]*)\)$", toc.group(0), re.M)
        assert len(entries) == len(headings(text, "##")), page
        assert {anchor for _, anchor in entries} <= anchors(text), page


def test_the_code_map_names_every_module_of_the_engine_once() -> None:
    """CONTRIBUTING.md's code map: a line per module (a package by its directory), none gone."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    code_map = re.search(r"^## The code map\n(.*?)(?=^## )", text, re.M | re.S)
    assert code_map
    named = re.findall(r"^\| `(engine/(?:[\w/]+\.py|[\w/]*))` \|", code_map.group(1), re.M)
    modules = [
        str(path.parent.relative_to(ROOT)) + "/"
        if path.name == "__init__.py"
        else str(path.relative_to(ROOT))
        for path in (ROOT / "engine").rglob("*.py")
    ]
    assert sorted(named) == sorted(set(named))
    assert sorted(set(named) - set(modules)) == []
    assert sorted(set(modules) - set(named)) == []
