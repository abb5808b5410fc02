"""`invoke bench`: median wall times of the commands operators wait for, as a table.

- `runbook validate runbooks/ha-rollback.yml` (target < 250 ms on 2 cores): start-up plus validation,
  which must not import paramiko or the terminal UI;
- `runbook plan` of a generated runbook of 1,000 steps on 50 hosts (target < 1 s);
- then the executor and run-overhead benchmarks (SSH against local sshd nodes), when present.

Each command runs as a fresh process (`python -m engine`, the interpreter itself, not a shim), as an
operator would run it. Loops are bounded; nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import write_large_runbook  # noqa: E402


def median_wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 5 if args.quick else 21
    engine = [sys.executable, "-m", "engine"]
    rows = [("python -c pass (interpreter start)", median_wall([sys.executable, "-c", "pass"], runs), None)]
    rows.append(
        (
            "runbook validate runbooks/ha-rollback.yml",
            median_wall([*engine, "validate", "runbooks/ha-rollback.yml"], runs),
            0.250,
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "typical").mkdir()
        large = write_large_runbook(Path(tmp), steps=1000, hosts=50)
        rows.append(
            ("runbook validate (1,000 steps)", median_wall([*engine, "validate", str(large)], runs), None)
        )
        rows.append(
            (
                "runbook plan (1,000 steps x 50 hosts)",
                median_wall([*engine, "plan", str(large)], max(3, runs // 3)),
                1.0,
            )
        )
        typical = write_large_runbook(Path(tmp) / "typical", steps=1000, hosts=50, per_host_every=10)
        rows.append(
            (
                "  same, 1 node step in 10 naming host.name",
                median_wall([*engine, "plan", str(typical)], max(3, runs // 3)),
                1.0,
            )
        )
    print(f"{'benchmark':<44} {'median':>9}  target")
    for name, seconds, target in rows:
        verdict = (
            ""
            if target is None
            else (f"< {target * 1000:.0f} ms " + ("ok" if seconds < target else "MISSED"))
        )
        print(f"{name:<44} {seconds * 1000:>7.0f}ms  {verdict}")
    for extra in ("executor_overhead.py", "run_overhead.py"):
        script = Path(__file__).with_name(extra)
        if script.exists():
            print(f"\n== {extra}")
            subprocess.run(
                [sys.executable, str(script), *(["--quick"] if args.quick else [])], cwd=ROOT, check=False
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
