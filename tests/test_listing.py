"""`runbook list DIR`: the runbooks below a directory, and only runbooks (issue 23)."""

from __future__ import annotations

import os
from pathlib import Path

from runbooks import in_process

BOOK = 'runbook: 1\nname: {name}\nversion: "1"\ntitle: {title}\nsteps:\n  - id: a\n    title: A\n    run: "true"\n'


def test_runbooks_below_the_directory_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "ops" / "db").mkdir(parents=True)
    (tmp_path / ".runbook" / "runs").mkdir(parents=True)
    (tmp_path / "ops" / "restart.yml").write_text(BOOK.format(name="restart", title="Restart"))
    (tmp_path / "ops" / "db" / "promote.yaml").write_text(BOOK.format(name="promote", title="Promote"))
    (tmp_path / "ops" / "db" / "broken.yml").write_text("runbook: 1\nname: broken\n")
    (tmp_path / "ops" / "cluster.yml").write_text("nodes:\n  - address: 10.0.0.1\n    role: [worker]\n")
    (tmp_path / "ops" / "values.yml").write_text("snapshot: s1\n")
    (tmp_path / ".runbook" / "runs" / "copy.yml").write_text(BOOK.format(name="hidden", title="Hidden"))
    result = in_process(["list", "ops"], tmp_path, dict(os.environ))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [row[:2] for row in rows] == [
        ["ops/db/broken.yml", "(invalid)"],
        ["ops/db/promote.yaml", "promote"],
        ["ops/restart.yml", "restart"],
    ]
    assert rows[0][2:] == ["3", "problems:", "run", "validate"]
    hidden = in_process(["list", "."], tmp_path, dict(os.environ))
    assert "hidden" not in hidden.stdout and "copy.yml" not in hidden.stdout
