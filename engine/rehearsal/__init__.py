"""Rehearsals: a runbook run by the real engine against simulated hosts (`runbook rehearse`).

scenario (what hosts answer) → faults (what the flags break) → stage (the hosts' stand-in, its clock and
log) → the run command's own pipeline → report (timeline, answers, faults' effects, coverage).
"""

REHEARSALS = "rehearsals"
"""Under the state directory: the rehearsals' own runs and locks, apart from the real ones (so `run --resume`
never finds one, and a rehearsal never holds or waits for a real run's lock)."""
