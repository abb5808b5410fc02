"""`runbook validate` must stay fast: it never imports SSH (paramiko, ~0.2 s) or the terminal UI (rich)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """\
import sys
from engine.cli import main
try:
    main(["runbook", "validate", "runbooks/ha-rollback.yml"])  # the console script, in-process
except SystemExit as done:
    assert not done.code, done.code
heavy = sorted(m for m in ("paramiko", "rich", "cryptography") if m in sys.modules)
print("heavy:", ",".join(heavy))
"""


def test_validate_imports_neither_ssh_nor_the_terminal_ui() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].strip() == "heavy:"
