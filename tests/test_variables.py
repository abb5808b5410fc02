"""Variable values: sources and precedence, conversion, validation of every value at once, secrets kept out.

Unit tests call `engine.variables` directly; the acceptance tests at the end go through `invoke plan`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine import schema, variables
from engine.errors import InvalidRunbook, UsageError
from engine.model import Runbook, Variable
from engine.validation import validate

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = "tests/data/variables.yml"
SECRET = "TopSecretValue1"


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return validate(ROOT / RUNBOOK, RUNBOOK).runbook


def messages(error: pytest.ExceptionInfo[InvalidRunbook]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def resolve(runbook: Runbook, cli: dict[str, str] | None = None, **kwargs: Any) -> variables.Values:
    kwargs.setdefault("environ", {})
    return variables.resolve(runbook, {"release": "r1", **(cli or {})}, **kwargs)


# --- sources and precedence ---------------------------------------------------------------------------


def test_precedence_is_var_then_vars_file_then_environment_then_default(
    runbook: Runbook, tmp_path: Path
) -> None:
    vars_file = tmp_path / "values.yml"
    vars_file.write_text("label: from-file\ncolor: green\ncount: 5\n", encoding="utf-8")
    environ = {"RUNBOOK_VAR_LABEL": "from-env", "RUNBOOK_VAR_COLOR": "red", "RUNBOOK_VAR_RATIO": "2.5"}
    values = resolve(runbook, {"label": "from-cli"}, vars_file=vars_file, environ=environ)
    assert values.values["label"] == "from-cli"
    assert values.values["color"] == "green"  # the file beats the environment
    assert values.values["count"] == 5  # a YAML file gives typed values
    assert values.values["ratio"] == 2.5  # the environment beats the default, converted to a number
    assert values.values["verbose"] is False
    assert values.sources == {
        "release": "command line",
        "label": "command line",
        "color": f"vars file {vars_file}",
        "count": f"vars file {vars_file}",
        "ratio": "environment",
        "verbose": "default",
        "hosts": "default",
    }


def test_environment_names_are_upper_case(runbook: Runbook) -> None:
    values = variables.resolve(
        runbook, {}, environ={"RUNBOOK_VAR_RELEASE": "from-env", "RUNBOOK_VAR_release": "x"}
    )
    assert values.values["release"] == "from-env"


# --- conversion of text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("integer", "3", 3),
        ("integer", "-12", -12),
        ("number", "2.5", 2.5),
        ("number", "7", 7.0),
        ("boolean", "true", True),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", "off", False),
        ("array", "[a, 'b c']", ["a", "b c"]),
        ("object", "{a: 1}", {"a": 1}),
        ("string", " 3 ", " 3 "),
    ],
)
def test_text_is_converted_to_the_declared_type(kind: str, text: str, value: Any) -> None:
    converted = variables.convert(text, Variable("v", {"type": kind}))
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("integer", "three", "expected an integer"),
        ("integer", "3.5", "expected an integer"),
        ("number", "abc", "expected a number"),
        ("boolean", "maybe", "expected true or false"),
        ("array", "[a, b", "expected a YAML list, e.g. [a, b]"),
        ("array", "a", "expected a YAML list, e.g. [a, b]"),
        ("object", "[1]", "expected a YAML mapping, e.g. {a: 1}"),
    ],
)
def test_unconvertible_text_says_what_was_expected_without_repeating_it(
    kind: str, text: str, message: str
) -> None:
    with pytest.raises(ValueError) as error:
        variables.convert(text, Variable("v", {"type": kind}))
    assert str(error.value) == message


# --- every problem at once ------------------------------------------------------------------------------


def test_every_problem_is_reported_together(runbook: Runbook) -> None:
    with pytest.raises(InvalidRunbook) as error:
        variables.resolve(
            runbook,
            {"count": "three", "colour": "red", "color": "blue", "ratio": "1"},
            environ={"RUNBOOK_VAR_COUNT": "4", "RUNBOOK_VAR_VERBOSE": "sometimes"},
        )
    assert messages(error) == [
        "command line: --var count: cannot read 'three' as integer: expected an integer",
        "command line: --var colour: unknown variable 'colour'; did you mean 'color'?",
        "command line: --var color: 'blue' is not one of ['red', 'green']",
        "environment: RUNBOOK_VAR_VERBOSE: cannot read 'sometimes' as boolean: expected true or false",
        f"{RUNBOOK}:15:3: variables.release: no value given for required variable 'release' (A release name); "
        "pass --var release=…, a vars file or RUNBOOK_VAR_RELEASE",
    ]


def test_unknown_name_without_a_close_match_lists_the_variables(runbook: Runbook) -> None:
    with pytest.raises(InvalidRunbook) as error:
        resolve(runbook, {"zzz": "1"})
    assert messages(error) == [
        "command line: --var zzz: unknown variable 'zzz'; variables: count, ratio, verbose, "
        "hosts, release, label, token, color"
    ]


def test_values_are_checked_against_their_schema(runbook: Runbook) -> None:
    with pytest.raises(InvalidRunbook) as error:
        resolve(runbook, {"count": "0", "release": "Not OK"})
    assert messages(error) == [
        "command line: --var release: 'Not OK' does not match the pattern ^[a-z0-9-]+$ (A release name)",
        "command line: --var count: 0 is less than the minimum of 1",
    ]


def test_vars_file_problems_point_into_the_file(runbook: Runbook, tmp_path: Path) -> None:
    vars_file = tmp_path / "values.yml"
    vars_file.write_text("release: r2\n\ncount: '3'\nlable: x\n", encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        variables.resolve(runbook, {}, vars_file=vars_file, environ={})
    assert messages(error) == [
        f"{vars_file}:3:1: count: '3' is not of type 'integer'",
        f"{vars_file}:4:1: lable: unknown variable 'lable'; did you mean 'label'?",
    ]


def test_vars_file_must_be_a_mapping(runbook: Runbook, tmp_path: Path) -> None:
    vars_file = tmp_path / "values.yml"
    vars_file.write_text("- release\n", encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        resolve(runbook, vars_file=vars_file)
    assert messages(error) == [f"{vars_file}:1:1: a vars file is a mapping of name: value"]


def test_malformed_assignment_is_a_usage_error() -> None:
    assert variables.parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="--var 'count': expected name=value"):
        variables.parse_assignments(["count"])


# --- required values and prompting ----------------------------------------------------------------------


def test_missing_required_value_is_asked_for_when_a_prompter_is_given(runbook: Runbook) -> None:
    asked: list[str] = []

    def prompt(variable: Variable) -> str:
        asked.append(variable.name)
        return "typed-in"

    values = variables.resolve(runbook, {}, environ={}, prompt=prompt)
    assert asked == ["release"]
    assert (values.values["release"], values.sources["release"]) == ("typed-in", "prompt")


def test_a_prompted_value_is_validated_like_the_others(runbook: Runbook) -> None:
    with pytest.raises(InvalidRunbook) as error:
        variables.resolve(runbook, {}, environ={}, prompt=lambda variable: "Bad Value")
    assert messages(error) == [
        "prompt: release: 'Bad Value' does not match the pattern ^[a-z0-9-]+$ (A release name)"
    ]


def test_missing_values_may_be_left_blank_for_checklists(runbook: Runbook) -> None:
    values = variables.resolve(runbook, {}, environ={}, allow_missing=True)
    assert values.missing == ("release",)
    assert "release" not in values.values


def test_defaults_are_checked_against_their_own_schema() -> None:
    runbook = validate(ROOT / RUNBOOK).runbook  # sound defaults: nothing to report
    assert variables.check_defaults(runbook) == []
    with pytest.raises(InvalidRunbook) as error:
        validate(ROOT / "tests/data/malformed/bad_default.yml", "bad_default.yml")
    assert messages(error) == [
        "bad_default.yml:9:14: variables.retries.default: 0 is less than the minimum of 1"
    ]


def test_a_format_that_cannot_be_checked_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        "runbook: 1\nname: demo\nversion: '1'\ntitle: T\nvariables:\n"
        "  tag: {type: string, format: semver}\n  ip: {type: string, format: ipv4}\n"
        "steps: [{id: a, title: A, run: 'ping {{ tag }} {{ ip }}'}]\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidRunbook) as error:
        validate(path, "rb.yml")
    # jsonschema would accept any value for a format it has no checker for (hostname and uri need extra packages)
    checkers = jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
    assert {"ipv4", "ipv6", "email", "date"} <= set(schema.checked_formats()) <= set(checkers)
    assert messages(error) == [
        "rb.yml:6:31: variables.tag.format: 'semver' is not a format the engine checks; use a pattern, or one of: "
        + ", ".join(schema.checked_formats())
    ]


# --- secrets --------------------------------------------------------------------------------------------


def test_secret_values_are_masked_and_kept_apart(runbook: Runbook) -> None:
    values = resolve(runbook, environ={"RUNBOOK_VAR_TOKEN": SECRET})
    assert values.secrets == frozenset({"token"})
    assert values.masked()["token"] == "********"
    assert values.secret_values() == [SECRET]


def test_an_unset_optional_secret_is_not_defined(runbook: Runbook) -> None:
    values = resolve(runbook)
    assert "token" not in values.values
    assert values.secrets == frozenset()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Top-Secret-Value!", "the value fails 'pattern' (API token)"),
        (
            "Top",
            "a secret must be at least 8 characters (not counting surrounding whitespace): "
            "a shorter one cannot be masked in output without blanking unrelated text",
        ),
    ],
)
def test_a_failing_secret_is_never_shown(runbook: Runbook, value: str, message: str) -> None:
    with pytest.raises(InvalidRunbook) as error:
        resolve(runbook, environ={"RUNBOOK_VAR_TOKEN": value})
    assert messages(error) == [f"environment: RUNBOOK_VAR_TOKEN: {message}"]


def test_a_secret_on_the_command_line_is_refused_without_being_shown(runbook: Runbook) -> None:
    with pytest.raises(InvalidRunbook) as error:
        resolve(runbook, {"token": SECRET})
    (message,) = messages(error)
    assert message.startswith("command line: --var token: a secret on the command line is visible to anyone")
    assert "RUNBOOK_VAR_TOKEN" in message and SECRET not in message


def test_an_unconvertible_secret_is_never_shown() -> None:
    variable = Variable("pin", {"type": "integer"}, secret=True)
    with pytest.raises(ValueError) as error:
        variables.convert("99x-secret-99", variable)
    assert "99x" not in str(error.value)


# --- through the command line ---------------------------------------------------------------------------


def plan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "plan", RUNBOOK, "--platform", "linux", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env={**environ, **(env or {})},
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    return result


def test_cli_converts_values_quotes_them_and_hides_secrets(tmp_path: Path) -> None:
    touched = tmp_path / "p"
    injection = f"x; touch {touched}"
    saved = tmp_path / "plan.json"
    result = plan(
        "--var",
        "count=3",
        "--var",
        "release=r1",
        "--var",
        f"label={injection}",
        "--save",
        str(saved),
        env={"RUNBOOK_VAR_TOKEN": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert "  count = 3  (command line)" in result.stdout  # an integer, not the text '3'
    assert '  token = "********"  (environment)' in result.stdout
    # a value without a pattern reaches the command as one quoted word
    assert f"$ echo 3 0.5 false r1 'x; touch {touched}' red" in result.stdout
    assert '$ curl -H X-Token:"${RUNBOOK_SECRET_TOKEN}" https://example.invalid/r1' in result.stdout
    assert SECRET not in result.stdout + result.stderr + saved.read_text(encoding="utf-8")
    # and running the rendered command proves it: one argument, no second command
    command = json.loads(saved.read_text(encoding="utf-8"))["steps"][0]["hosts"][0]["commands"]["*"]
    ran = subprocess.run(
        ["bash", "-c", command.replace("echo", "printf '<%s>'", 1)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout == f"<3><0.5><false><r1><{injection}><red>"
    assert not touched.exists()


def test_cli_refuses_bad_values_all_at_once_without_showing_the_secret(tmp_path: Path) -> None:
    touched = tmp_path / "p"
    result = plan(
        "--var",
        "count=three",
        "--var",
        f"release=x; touch {touched}",
        "--var",
        "colour=red",
        env={"RUNBOOK_VAR_TOKEN": "Top-Secret-Value!"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "command line: --var count: cannot read 'three' as integer: expected an integer",
        f"command line: --var release: 'x; touch {touched}' does not match the pattern ^[a-z0-9-]+$ (A release name)",
        "command line: --var colour: unknown variable 'colour'; did you mean 'color'?",
        "environment: RUNBOOK_VAR_TOKEN: the value fails 'pattern' (API token)",
        "4 problems found",
    ]
    assert "Top-Secret-Value!" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert not touched.exists()


def test_cli_missing_required_value_without_a_terminal_is_an_error() -> None:
    result = plan()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{RUNBOOK}:15:3: variables.release: no value given for required variable 'release' (A release name); "
        "pass --var release=…, a vars file or RUNBOOK_VAR_RELEASE",
        "1 problem found",
    ]


def test_cli_precedence(tmp_path: Path) -> None:
    vars_file = tmp_path / "values.yml"
    vars_file.write_text("release: from-file\nlabel: from-file\n", encoding="utf-8")
    result = plan(
        "--var",
        "label=from-cli",
        "--vars-file",
        str(vars_file),
        env={"RUNBOOK_VAR_LABEL": "from-env", "RUNBOOK_VAR_RELEASE": "from-env", "RUNBOOK_VAR_COUNT": "7"},
    )
    assert result.returncode == 0, result.stderr
    assert '  label = "from-cli"  (command line)' in result.stdout
    assert f'  release = "from-file"  (vars file {vars_file})' in result.stdout
    assert "  count = 7  (environment)" in result.stdout
    assert "  ratio = 0.5  (default)" in result.stdout
    assert "$ echo 7 0.5 false from-file from-cli red" in result.stdout
