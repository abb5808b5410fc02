"""The schema's errors as located, fixable messages (the schema itself is checked in test_docs.py)."""

from __future__ import annotations

import json
import textwrap

import pytest

from engine import schema
from engine.loading import parse

HEAD = 'runbook: 1\nname: demo\nversion: "1.0"\ntitle: Demo\n'
STEP_KEYS = list(json.loads(schema.SCHEMA_PATH.read_text())["$defs"]["step"]["properties"])


def check(text: str) -> list[str]:
    data, positions = parse(textwrap.dedent(text), "rb.yml")
    return [str(p) for p in schema.check(data, positions)]


def check_steps(steps: str) -> list[str]:
    """Problems of a runbook made of HEAD and the given `steps:` block (lines start at 5)."""
    return check(HEAD + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  "))


def test_a_sound_runbook_has_no_problems() -> None:
    assert check_steps("- id: one\n  title: One\n  run: echo one\n") == []


def test_unknown_key_suggests_the_close_one_or_lists_the_allowed() -> None:
    assert check_steps("- id: one\n  title: One\n  run: echo\n  retry: 3\n  colour: red\n") == [
        "rb.yml:9:5: steps[0].retry: unknown key 'retry'; did you mean 'retries'?",
        "rb.yml:10:5: steps[0].colour: unknown key 'colour'; allowed: " + ", ".join(STEP_KEYS),
    ]
    assert STEP_KEYS[:6] == ["id", "title", "description", "run", "manual", "record"]  # in the schema's order


def test_required_keys_are_reported_in_a_stable_order() -> None:
    assert check("steps: []\n") == [
        "rb.yml:1:1: 'name' is required",
        "rb.yml:1:1: 'runbook' is required",
        "rb.yml:1:1: 'title' is required",
        "rb.yml:1:1: 'version' is required",
        "rb.yml:1:8: steps: [] should be non-empty",
    ]


@pytest.mark.parametrize(("value", "hint"), [("1.10", "'1.10'"), ("2", "'2'"), ("true", "'true'")])
def test_a_version_yaml_read_as_another_type_says_quote_it(value: str, hint: str) -> None:
    text = HEAD.replace('"1.0"', value) + "steps: [{id: a, title: A, run: b}]\n"
    kind = "a boolean" if value == "true" else ("an integer" if value == "2" else "a number")
    assert check(text) == [f"rb.yml:3:10: version: expected string, got {kind}; quote it: {hint}"]


def test_unsupported_format_version_lists_the_supported_ones_and_stops_there() -> None:
    assert check("runbook: 7\nsteps: 3\n") == [
        "rb.yml:1:10: runbook: unsupported format version 7; supported: 1"
    ]
    assert check(
        "runbook: '1'\nname: demo\nversion: '1'\ntitle: T\nsteps: [{id: a, title: A, run: b}]\n"
    ) == ["rb.yml:1:10: runbook: unsupported format version '1'; supported: 1"]


def test_run_and_manual_exactly_one_and_record_only_on_manual_steps() -> None:
    assert check_steps("- id: a\n  title: A\n  run: x\n  manual: y\n  record: {prompt: Seen}\n") == [
        "rb.yml:9:5: steps[0].manual: 'manual' is not allowed with 'run': a step runs a command or is manual, "
        "not both (record is for manual steps)",
        "rb.yml:10:5: steps[0].record: 'record' is not allowed with 'run': a step runs a command or is manual, "
        "not both (record is for manual steps)",
    ]
    assert check_steps("- id: a\n  title: A\n") == [
        "rb.yml:6:5: steps[0]: exactly one of 'run' or 'manual' or 'use' or 'steps' is required"
    ]


def test_a_two_form_value_is_judged_by_the_rules_of_its_own_type() -> None:
    assert check_steps("- id: a\n  title: A\n  run: x\n  timeout: 10 minutes\n  retries: {count: -1}\n") == [
        "rb.yml:9:14: steps[0].timeout: '10 minutes' is not a duration: write seconds (90) or a number with a "
        "unit (500ms, 30s, 10m, 1h)",
        "rb.yml:10:22: steps[0].retries.count: -1 is less than the minimum of 0",
    ]
    assert check_steps("- id: a\n  title: A\n  run: x\n  confirm: 3\n  timeout: -1\n  retries: 1.5\n") == [
        "rb.yml:9:14: steps[0].confirm: expected boolean, string or object, got an integer; quote it: '3'",
        "rb.yml:10:14: steps[0].timeout: -1 is less than or equal to the minimum of 0",
        "rb.yml:11:14: steps[0].retries: expected integer or object, got a number",
    ]
    # a mapping where a string is expected is judged as a mapping: the unknown key, not "expected string"
    assert check_steps("- id: a\n  title: A\n  run: {macos: x}\n  timeout: true\n") == [
        "rb.yml:8:11: steps[0].run.macos: unknown key 'macos'; allowed: linux, darwin, windows, default",
        "rb.yml:9:14: steps[0].timeout: expected number or string, got a boolean",
    ]


def test_target_needs_local_or_ssh_and_ssh_needs_hosts_or_from_file() -> None:
    text = (
        HEAD
        + """\
targets:
  a: {concurrency: 2}
  b: {local: false}
  c: {ssh: {each: nodes}}
  d: {ssh: {hosts: ['user@host:22', 'bad host']}}
  e: {local: true, ssh: {hosts: [x]}}
  f: {ssh: {hosts: [x], from_file: c.yml, each: nodes, host: h}}
steps: [{id: a, title: A, run: b}]
"""
    )
    assert check(text) == [
        "rb.yml:6:6: targets.a: exactly one of 'local' or 'ssh' is required",
        "rb.yml:7:14: targets.b.local: must be true (or remove the key)",
        "rb.yml:8:12: targets.c.ssh: 'from_file' is needed with 'each'",
        "rb.yml:8:12: targets.c.ssh: exactly one of 'hosts' or 'from_file' is required",
        "rb.yml:9:37: targets.d.ssh.hosts[1]: 'bad host' is not a host: write host, user@host or user@host:port "
        "([addr] for an IPv6 address), or a template",
        "rb.yml:10:20: targets.e.ssh: 'ssh' is not allowed with 'local': a target is this machine or SSH hosts, "
        "not both; keep one",
        "rb.yml:11:25: targets.f.ssh.from_file: 'from_file' is not allowed with 'hosts': hosts are listed or "
        "read from a file, not both; keep one",
    ]


def test_names_of_variables_and_targets_are_checked() -> None:
    text = (
        HEAD + "variables:\n  bad-name: {type: string}\ntargets:\n  Web: {local: true}\n"
        "steps: [{id: a, title: A, run: b}]\n"
    )
    assert check(text) == [
        "rb.yml:6:3: variables.bad-name: invalid name 'bad-name': names must match ^[A-Za-z_][A-Za-z0-9_]*$",
        "rb.yml:8:3: targets.Web: invalid name 'Web': names must match ^[a-z][a-z0-9_-]*$",
    ]


def test_variable_fragments_are_json_schema() -> None:
    text = (
        HEAD
        + "variables:\n  v: {type: text, pattern: '[', minimum: low}\nsteps: [{id: a, title: A, run: b}]\n"
    )
    assert check(text) == [
        "rb.yml:6:13: variables.v.type: 'text' is not one of ['string', 'integer', 'number', 'boolean', 'array', "
        "'object']",
        "rb.yml:6:28: variables.v.pattern: '[' is not a 'regex'",
        "rb.yml:6:42: variables.v.minimum: expected number, got a string",
    ]


def test_describe_type() -> None:
    values: list[object] = ["", True, 1, 1.5, [], {}, None]
    assert [schema.describe_type(v) for v in values] == [
        "a string",
        "a boolean",
        "an integer",
        "a number",
        "a list",
        "a mapping",
        "nothing (null)",
    ]


def test_variable_validator_checks_formats() -> None:
    validator = schema.validator({"type": "string", "format": "ipv4"})
    assert [e.message for e in validator.iter_errors("10.0.0.300")] == ["'10.0.0.300' is not a 'ipv4'"]
    assert list(validator.iter_errors("10.0.0.3")) == []
