"""Rehearsals: a runbook run by the real engine against simulated hosts (`runbook rehearse`).

scenario (what hosts answer) → faults (what the flags break) → stage (the hosts' stand-in, its clock and
log) → the run command's own pipeline → report (timeline, answers, faults' effects, coverage).
"""

from __future__ import annotations

from pathlib import Path


def is_scenario(path: Path) -> bool:
    """A rehearsal's scenario (`NAME.rehearsal.yml`, beside its runbook): listed with no runbook."""
    return path.name.endswith((".rehearsal.yml", ".rehearsal.yaml"))
