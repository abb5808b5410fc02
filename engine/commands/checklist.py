"""`runbook checklist FILE`: the plan as a checklist to print and tick, in Markdown or standalone HTML.

`--journal RUN_ID` fills it from a run. The run's values (secrets excepted, they are masked in the journal)
and platform are used to render the plan, so the commands shown are the ones that ran; `--var`,
`--vars-file` and `--platform` still win over them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.checklist import build, to_html, to_markdown
from engine.checklist.filling import RunRecord, read_run
from engine.errors import UsageError
from engine.journal import JOURNAL_NAME, default_state_dir, read_journal
from engine.options import Options, prepare
from engine.rendering import MASK
from engine.variables import ENV_PREFIX

FORMATS = ("md", "html")
PAPERS = ("auto", "a4", "letter")


def main(options: Options, format: str = "md", output: str | None = None, journal: str | None = None,
         state_dir: str | None = None, paper: str = "auto") -> int:
    if format not in FORMATS:
        raise UsageError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    if paper not in PAPERS:
        raise UsageError(f"--paper {paper!r}: choose one of {', '.join(PAPERS)}")
    run = load_run(Path(state_dir) if state_dir else default_state_dir(Path.cwd()), journal) if journal else None
    if run is not None:
        options = with_run(options, run)
    _, plan = prepare(options, any_platform=options.platform is None, allow_missing=True)
    if run is not None and run.runbook.get("name") not in (None, plan.runbook.name):
        raise UsageError(f"run {run.run_id} is of runbook {run.runbook.get('name')!r}, not {plan.runbook.name!r}")
    checklist = build(plan, run)
    text = to_html(checklist, paper) if format == "html" else to_markdown(checklist)
    if output is None or output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"checklist written to {output}", file=sys.stderr)
    return 0


def load_run(state_dir: Path, run_id: str) -> RunRecord:
    path = state_dir / "runs" / run_id / JOURNAL_NAME
    if not path.is_file():
        raise UsageError(f"--journal {run_id}: no journal at {path} (--state-dir or RUNBOOK_STATE_DIR moves it)")
    return read_run(read_journal(path))


def with_run(options: Options, run: RunRecord) -> Options:
    """The run's platform and values, as the weakest sources after the command line and vars file."""
    environ = dict(os.environ if options.environ is None else options.environ)
    for name, value in run.variables.items():
        if value != MASK:
            environ[ENV_PREFIX + name.upper()] = _as_text(value)
    return replace(options, environ=environ, platform=options.platform or run.platform)


def _as_text(value: Any) -> str:
    """A journaled value as the text an environment variable holds (converted back to its type on reading)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
