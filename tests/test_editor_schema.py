"""The schema as editors see it: yaml-language-server (VS Code's YAML engine) over stdio, on real files.

Each broken runbook must be reported at the line of the mistake with a message that names the real problem
(not a `oneOf` best match); a sound one must be clean. The server is mapped to the schema by the same
`yaml.schemas` setting docs/editors.md shows, and by the `$schema` modeline.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from yamlls import Diagnostic, YamlLanguageServer

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas/runbook-v1.schema.json"
HEAD = 'runbook: 1\nname: demo\nversion: "1.0"\ntitle: Demo\nsteps:\n'  # steps start at line 6


def installed_schema() -> str:
    """What `runbook schema --path` prints: the path docs/editors.md tells editors to map runbooks to."""
    runbook = Path(sys.executable).with_name("runbook")
    done = subprocess.run(
        [runbook, "schema", "--path"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_schema_path_prints_the_installed_schema() -> None:
    path = Path(installed_schema())
    assert path.is_absolute()
    assert path.read_text(encoding="utf-8") == SCHEMA.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YamlLanguageServer]:
    """One server for the module, set up as docs/editors.md's VS Code settings say: the plain path that
    `runbook schema --path` prints, mapped to runbook files by globs (no modeline)."""
    globs = ["*.runbook.yml", "runbooks/*.yml"]
    running = YamlLanguageServer({"validate": True, "hover": True, "schemas": {installed_schema(): globs}})
    running.wait_until_validating(tmp_path_factory.mktemp("warm") / "warm.runbook.yml", "runbook: x\n")
    yield running
    running.close()


def diagnostics(server: YamlLanguageServer, tmp_path: Path, text: str) -> list[str]:
    return [str(d) for d in server.diagnostics(tmp_path / "broken.runbook.yml", text)]


def test_a_bad_duration_is_reported_as_a_bad_duration(server: YamlLanguageServer, tmp_path: Path) -> None:
    text = HEAD + "  - id: a\n    title: A\n    run: sleep 1\n    timeout: 30 minutes\n"
    assert diagnostics(server, tmp_path, text) == [
        "9:14: Not a duration: write seconds (90) or a number with a unit (500ms, 30s, 10m, 1h)."
    ]


def test_manual_with_run_is_reported_at_manual(server: YamlLanguageServer, tmp_path: Path) -> None:
    text = HEAD + "  - id: a\n    title: A\n    run: echo\n    manual: Look at the screen.\n"
    assert diagnostics(server, tmp_path, text) == ["9:5: Property manual is not allowed."]


def test_a_commands_keys_on_a_manual_step_are_reported_at_each(
    server: YamlLanguageServer, tmp_path: Path
) -> None:
    """The editor says what `runbook validate` says: the schema holds the rule (its dependentSchemas)."""
    text = HEAD + "  - id: a\n    title: A\n    manual: Look.\n    until: result\n    run_once: true\n"
    assert diagnostics(server, tmp_path, text) == [
        "9:5: Property until is not allowed.",
        "10:5: Property run_once is not allowed.",
    ]


def test_record_on_a_run_step_is_reported_at_record(server: YamlLanguageServer, tmp_path: Path) -> None:
    text = HEAD + "  - id: a\n    title: A\n    run: echo\n    record:\n      prompt: Seen\n"
    assert diagnostics(server, tmp_path, text) == ["9:5: Property record is not allowed."]


def test_every_mistake_of_a_file_at_its_own_line(server: YamlLanguageServer, tmp_path: Path) -> None:
    text = (
        HEAD.replace("steps:\n", "")
        + "variables:\n  host: {type: string, format: hostname}\n"  # 6
        + "targets:\n  web: {ssh: {hosts: ['bad host']}}\n"  # 8
        + "steps:\n"
        + "  - id: Restart\n    title: A\n    run: {macos: x}\n"  # 10, 12
        + "  - id: b\n    title: B\n    run: echo\n    confirm: 3\n    retries: {count: -1}\n"  # 16, 17
    )
    assert sorted(server.diagnostics(tmp_path / "many.runbook.yml", text), key=lambda d: d.line) == [
        Diagnostic(
            6,
            32,
            "Not a format the engine checks; use a pattern, or one of: date, email, idn-email, ipv4, "
            "ipv6, regex, uuid.",
        ),
        Diagnostic(
            8,
            23,
            "Not a host: write host, user@host or user@host:port ([addr] for an IPv6 address), or a template.",
        ),
        Diagnostic(
            10, 9, "Not a step id: lowercase letters, digits, - and _, starting with a letter or digit."
        ),
        Diagnostic(12, 11, "Property macos is not allowed."),
        Diagnostic(16, 14, "Incorrect type. Expected one of boolean, string, object."),
        Diagnostic(17, 22, "Value is below the minimum of 0."),
    ]


def test_the_guides_example_and_the_shipped_runbooks_are_clean(
    server: YamlLanguageServer, tmp_path: Path
) -> None:
    guide = (ROOT / "docs/authoring.md").read_text(encoding="utf-8")
    first = re.search(r"^## A first runbook\n\n```yaml\n(.*?)```", guide, re.S | re.M)
    assert first is not None
    # opened where it would live, so that its modeline's relative path resolves
    assert server.diagnostics(ROOT / "runbooks/example.yml", first.group(1)) == []
    for path in sorted((ROOT / "runbooks").glob("*.yml")):
        assert server.diagnostics(path, path.read_text(encoding="utf-8")) == [], path.name


def test_the_modeline_maps_a_file_the_settings_do_not(server: YamlLanguageServer, tmp_path: Path) -> None:
    text = f"# yaml-language-server: $schema={SCHEMA.as_uri()}\n" + HEAD + "  - id: a\n    title: A\n"
    # steps[0] has neither run nor manual: the first branch's key is named, at the step
    assert [str(d) for d in server.diagnostics(tmp_path / "other.yml", text)] == [
        '7:5: Missing property "run".'
    ]


def test_a_hover_names_the_definition_and_shows_its_markdown(
    server: YamlLanguageServer, tmp_path: Path
) -> None:
    text = HEAD + "  - id: a\n    title: A\n    run: echo\n    timeout: 30s\n"
    hover = server.hover(tmp_path / "hover.runbook.yml", text, 9, 6)
    assert hover.startswith("#### Duration\n")
    assert "`30s`, `10m`, `1h`" in hover


def test_completion_offers_the_snippets(server: YamlLanguageServer, tmp_path: Path) -> None:
    step = server.completion(tmp_path / "step.runbook.yml", HEAD + "  - \n", 6, 5)
    assert step[:2] == ["command step", "manual step"] and "timeout" in step
    top = HEAD.replace("steps:\n", "")
    target = server.completion(tmp_path / "t.runbook.yml", top + "targets:\n  web: \nsteps: []\n", 6, 8)
    assert "SSH target" in target
    variable = server.completion(
        tmp_path / "v.runbook.yml", top + "variables:\n  release: \nsteps: []\n", 6, 12
    )
    assert {"variable", "secret variable"} <= set(variable)


def test_a_rolling_group_is_clean_and_a_command_key_on_it_is_reported(
    server: YamlLanguageServer, tmp_path: Path
) -> None:
    """Groups in the editor: `steps:` and `serial:` known, `run` on a group refused like `validate` does."""
    group = (
        "  - id: roll\n    title: Roll\n    on: web\n    serial: 25%\n"
        "    steps:\n      - id: a\n        title: A\n        run: echo {{ batch[0].name }}\n"
    )
    head = HEAD.replace("steps:\n", "targets:\n  web: {ssh: {hosts: [w1, w2]}}\nsteps:\n")
    assert server.diagnostics(tmp_path / "clean.runbook.yml", head + group) == []
    assert [
        str(d) for d in server.diagnostics(tmp_path / "run.runbook.yml", head + group + "    run: echo\n")
    ] == ["16:5: Property run is not allowed."]
    hover = server.hover(tmp_path / "hover.runbook.yml", head + group, 12, 6)
    assert "batch by batch" in hover
