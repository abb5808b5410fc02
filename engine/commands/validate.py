"""`runbook validate FILE…`: schema, templates and lint, every problem at once; nothing runs.

Three outputs of the same findings: `text` for people (`file:line:col: path: message`), `json` for scripts
(one document, versioned), `github` for GitHub Actions (one workflow command per problem, so the pull
request is annotated at the line). `runbook-validate FILE…` (the pre-commit hook) checks several files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.errors import EXIT_INVALID, EXIT_OK, InvalidRunbook, Problem
from engine.flags import argument, option
from engine.validation import validate


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


@dataclass(frozen=True, kw_only=True)
class ValidateFiles:
    """`runbook-validate FILE…`, the pre-commit hook."""

    format: Format = option(
        Format.TEXT,
        help="text (default), json (one versioned document) or github (workflow commands: annotations).",
    )
    files: tuple[str, ...] = argument(help="runbook files (YAML)", metavar="FILE")


@dataclass(frozen=True, kw_only=True)
class ValidateOptions(ValidateFiles):
    """`runbook validate FILE…`: one file or several (each reported; exit 2 if any is invalid)."""


FORMAT_VERSION = 1  # of the JSON document: bumped when a key changes meaning or goes away


@dataclass(frozen=True)
class Finding:
    """What validating one file found: its problems (none when valid), warnings and a summary."""

    file: str
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    summary: dict[str, Any] | None  # name, version, steps of a valid runbook

    @property
    def valid(self) -> bool:
        return not self.problems


def check(file: str) -> Finding:
    try:
        validated = validate(Path(file), file)
    except InvalidRunbook as error:
        return Finding(file, error.problems, (), None)
    rb = validated.runbook
    summary = {"name": rb.name, "version": rb.version, "steps": len(rb.steps)}
    return Finding(file, (), validated.warnings, summary)


def main(chosen: ValidateOptions) -> int:
    return check_files(chosen.files, chosen.format)


def check_files(files: Sequence[str], format: Format = Format.TEXT) -> int:
    findings = [check(file) for file in files]
    {Format.TEXT: _text, Format.JSON: _json, Format.GITHUB: _github}[format](findings)
    return EXIT_OK if all(f.valid for f in findings) else EXIT_INVALID


def _text(findings: list[Finding]) -> None:
    for finding in findings:
        for problem in (*finding.problems, *finding.warnings):
            print(problem, file=sys.stderr)
        if finding.valid and finding.summary is not None:
            warned = (
                f", {len(finding.warnings)} warning{'s' if len(finding.warnings) != 1 else ''}"
                if finding.warnings
                else ""
            )
            s = finding.summary
            steps = f"{s['steps']} step{'s' if s['steps'] != 1 else ''}"
            print(f"{finding.file}: ok — {s['name']} {s['version']}, {steps}{warned}")
        else:
            count = len(finding.problems)
            print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)


def _problem(problem: Problem, severity: str) -> dict[str, Any]:
    return {
        "severity": severity,
        "line": problem.line or None,
        "column": problem.column or None,
        "path": problem.path,
        "message": problem.message,
    }


def document(findings: list[Finding]) -> dict[str, Any]:
    """The JSON form: `format`/`format_version` first, so a script can refuse a document it does not know."""
    return {
        "format": "runbook-validate",
        "format_version": FORMAT_VERSION,
        "valid": all(f.valid for f in findings),
        "files": [
            {
                "file": f.file,
                "valid": f.valid,
                "runbook": f.summary,
                "problems": [_problem(p, "error") for p in f.problems]
                + [_problem(p, "warning") for p in f.warnings],
            }
            for f in findings
        ],
    }


def _json(findings: list[Finding]) -> None:
    print(json.dumps(document(findings), indent=2, ensure_ascii=False))


def _github(findings: list[Finding]) -> None:
    for finding in findings:
        for problem in finding.problems:
            print(workflow_command("error", problem))
        for problem in finding.warnings:
            print(workflow_command("warning", problem))
        if finding.valid:
            print(f"{finding.file}: ok")


def workflow_command(kind: str, problem: Problem) -> str:
    """`::error file=…,line=…,col=…::message`, escaped as GitHub's runner reads it (toolkit `command.ts`)."""
    where = {"file": problem.file}
    if problem.line:
        where |= {"line": str(problem.line), "col": str(problem.column)}
    properties = ",".join(f"{k}={_escape(v, property=True)}" for k, v in where.items())
    message = f"{problem.path}: {problem.message}" if problem.path else problem.message
    return f"::{kind} {properties}::{_escape(message)}"


def _escape(text: str, property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text
