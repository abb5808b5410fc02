"""The schema is valid JSON Schema, the authoring guide documents all of it, and the shipped runbook uses it."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from engine import schema
from engine.validation import validate

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
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Authoring guide\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README.md has no '## Authoring guide' section"
    return match.group(1)


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
    example = re.search(r"^### A first runbook\n.*?```yaml\n(.*?)```", authoring_guide(), re.M | re.S)
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
