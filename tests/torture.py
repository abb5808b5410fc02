"""`invoke torture`: a run killed with SIGKILL at random moments, resumed each time, ITERATIONS times.

The runbook's local steps check, as they start, that no earlier copy of the same step is still alive (a
second copy beside the first; a zombie not yet reaped is not alive). After the loop a last resume finishes
the run; then every step must have ended well, the journal must hold no step-start after that step's ok end
(a copy that finished but was killed before its end was journaled is *unknown*, and `--rerun-unknown` runs
it again: that is the flag's meaning, not a violation), and no step may have reported a violation.

Standalone (no pytest): `python tests/torture.py [ITERATIONS] [SEED]`.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runbooks import Lab, journal, run_dirs, write_runbook

STEPS = 20
_STEP = """\
  - id: step-{n}
    title: Step {n}
    run: |
      t="$RUNBOOK_TORTURE"; me=step-{n}
      for pid in $(cat "$t/$me.pids" 2>/dev/null); do
        state=$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)
        if [ -n "$state" ] && [ "$state" != Z ]; then echo "$me: second copy while $pid runs" >> "$t/violations"; fi
      done
      echo $$ >> "$t/$me.pids"
      sleep {delay}
"""


def main(iterations: int = 30, seed: int | None = None) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lab = Lab(root / "lab", root / "home")
        lab.home.mkdir(parents=True)
        lab.root.mkdir()
        steps = "".join(
            _STEP.format(n=n, delay=rng.randint(2, 30) / 10) for n in range(STEPS)
        )  # longer than a start-up
        book = write_runbook(
            lab.root, f'runbook: 1\nname: torture\nversion: "1"\ntitle: Torture\nsteps:\n{steps}'
        )
        env = {"RUNBOOK_TORTURE": str(lab.root)}
        kills = 0
        runs = 0
        for _ in range(iterations):
            runs += 1
            args = ["--yes"] + (
                ["--resume", "--rerun-unknown", "--if-still-running", "wait"] if run_dirs(lab.state) else []
            )
            running = lab.start(book, *args, env=env)
            _wait_for_a_step(lab, running.process)  # the engine's own start-up is not what is tortured
            time.sleep(rng.uniform(0.0, 2.5))
            if running.process.poll() is None:
                running.process.send_signal(signal.SIGKILL)
                kills += 1
            running.finish(timeout=60)
            if _finished(lab):
                break
        final = lab.run(
            book, "--yes", "--resume", "--rerun-unknown", "--if-still-running", "wait", env=env, timeout=120
        )
        return _verdict(lab, kills, runs, final)


def _wait_for_a_step(lab: Lab, process: subprocess.Popen[str]) -> None:
    before = sum(len(p.read_text().split()) for p in lab.root.glob("step-*.pids"))
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if sum(len(p.read_text().split()) for p in lab.root.glob("step-*.pids")) > before:
            return
        time.sleep(0.02)


def _finished(lab: Lab) -> bool:
    return bool(run_dirs(lab.state)) and any(
        r["type"] == "run-end" and r["status"] == "ok" for r in journal(lab.state)
    )


def _verdict(lab: Lab, kills: int, iterations: int, final: subprocess.CompletedProcess[str]) -> int:
    records = journal(lab.state)
    problems = []
    violations = lab.root / "violations"
    if violations.exists():
        problems += violations.read_text().splitlines()
    ended_well: set[str] = set()
    for record in records:
        step = str(record.get("step"))
        if record["type"] == "step-start" and step in ended_well:
            problems.append(f"{step}: started again after its ok end")
        if record["type"] == "step-end" and record["status"] == "ok":
            ended_well.add(step)
    missing = {f"step-{n}" for n in range(STEPS)} - ended_well
    if missing:
        problems.append(f"never ended well: {sorted(missing)} (last run: exit {final.returncode})")
    starts = sum(1 for r in records if r["type"] == "step-start")
    print(
        f"{iterations} runs, {kills} SIGKILLs, {starts} step starts for {STEPS} steps; violations: {len(problems)}"
    )
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
