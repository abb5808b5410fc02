"""`invoke bench` runs end to end on one node, once (not timed: it only must not rot)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402


@pytest.mark.ssh
def test_the_benchmark_measures_every_command_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = ["--quick", "--engine-only", "--nodes", "1", "--runs", "1", "--startup-runs", "1", "--warmup", "0"]
    code = bench.main([*argv, "--out", str(out)])
    assert code == 0
    report = json.loads((out / "bench.json").read_text())
    row = report["rollback"]["1"]
    for tool in ("engine", "floor"):
        assert len(row[tool]["runs_s"]) == 1 and row[tool]["median_s"] > bench.STAND_INS_TOTAL
        assert row[tool]["peak_rss_mib"] > 0
    assert row["ratios"]["engine/floor"] > 0
    assert row["engine+postgres"]["median_s"] > bench.STAND_INS_TOTAL  # team mode: shared state, same run
    assert row["ratios"]["engine+postgres/engine"] > 0
    # the least any engine on these libraries could take: the floor plus importing them, same rounds
    assert row["imports"]["median_s"] > 0 and row["imports"]["node_cpu_median_s"] == 0
    assert row["ratios"]["(floor+imports)/floor"] > 1
    for tool in ("engine", "floor"):  # both log in on the node: its sshd spends CPU for them
        assert row[tool]["node_cpu_median_s"] > 0
    startup = report["startup"]
    assert {"imports", "validate", "plan", "validate-uncompiled", "plan-uncompiled"} <= set(startup)
    assert startup["ratios"]["validate/imports"] > 0
    text = (out / "bench.md").read_text()
    assert "| 1 |" in text and "engine/floor" in text and "floor + imports" in text
    assert "engine+postgres/engine" in text


def test_the_engine_is_measured_with_its_bytecode_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell with PYTHONDONTWRITEBYTECODE=1 and a source edited since its last compile would make every measured
    process compile it again (~20 ms a start here): the benchmark writes the bytecode first, as pip does."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "module.py").write_text("VALUE = 1\n")
    bench.compiled(tmp_path)
    assert list((tmp_path / "engine" / "__pycache__").glob("module.cpython-*.pyc"))


@pytest.mark.ssh
def test_the_breakdown_says_where_a_hosts_share_goes(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/breakdown.py runs end to end (not timed): node CPU per piece, engine CPU per thread."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import breakdown

    environ = dict(os.environ)
    assert breakdown.main(["--repeat", "2", "--engine", "1"]) == 0
    assert dict(os.environ) == environ  # the lab's HOME, PATH and TERM=dumb stay out of later tests
    report = json.loads(capsys.readouterr().out)
    pieces = {"connection", "bare session", "preflight probe", "command under the wrapper", "close's cleanup"}
    for side in ("node_cpu_ms", "engine_cpu_ms"):
        assert pieces <= {name.split(" (")[0].split(":")[0] for name in report[side]}
        assert all(isinstance(ms, float | int) for ms in report[side].values())
    engine = report["engine"]  # a Python process importing the engine spends well over 0.05 s of CPU
    assert engine["process_cpu_s"] > 0.05 and "main" in engine["threads"]
