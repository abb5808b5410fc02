"""`runbook checklist FILE`: the plan as a checklist to print and tick, in Markdown or standalone HTML.

`--journal RUN_ID` fills it from a run. The run's values (secrets excepted: the journal masks them) and
platform render the plan, as a resume would, so the commands shown are the ones that ran; `--var` and
`--platform` still win over them.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from engine.checklist import build, to_html, to_markdown
from engine.errors import UsageError
from engine.history import RunHistory, fold
from engine.masking import MASK
from engine.options import Options, prepare
from engine.state import StateBackend, open_state
from engine.validation import validate

FORMATS = ("md", "html")
PAPERS = ("auto", "a4", "letter")


def main(
    options: Options,
    format: str = "md",
    output: str | None = None,
    journal: str | None = None,
    state_dir: str | None = None,
    paper: str = "auto",
) -> int:
    if format not in FORMATS:
        raise UsageError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    if paper not in PAPERS:
        raise UsageError(f"--paper {paper!r}: choose one of {', '.join(PAPERS)}")
    validated = validate(Path(options.file), options.file)
    run = load_run(open_state(None, Path.cwd(), state_dir), journal) if journal else None
    if run is not None:
        name = validated.runbook.name
        if run.runbook.name not in ("", name):
            raise UsageError(f"--journal {run.run_id} is a run of runbook {run.runbook.name!r}, not {name!r}")
        options = with_run(options, run, {v.name for v in validated.runbook.variables})
    _, plan = prepare(
        options, any_platform=options.platform is None, allow_missing=True, validated=validated, paper=True
    )
    checklist = build(plan, run)
    text = to_html(checklist, paper) if format == "html" else to_markdown(checklist)
    if output is None or output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"checklist written to {output}", file=sys.stderr)
    return 0


def load_run(state: StateBackend, run_id: str) -> RunHistory:
    records = state.records(run_id)
    if records is None:
        raise UsageError(
            f"--journal {run_id}: no journal at {state.location} for run {run_id} "
            "(--state-dir or RUNBOOK_STATE_DIR moves it)"
        )
    return fold(records)


def with_run(options: Options, run: RunHistory, known: set[str]) -> Options:
    """The run's platform and values (secrets are masked in the journal, so never taken from it)."""
    recorded = {name: value for name, value in run.variables.items() if value != MASK and name in known}
    return replace(
        options, recorded={**recorded, **(options.recorded or {})}, platform=options.platform or run.platform
    )
