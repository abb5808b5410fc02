"""Rehearsals: a runbook run by the real engine against simulated hosts (`runbook rehearse`).

scenario (what hosts answer) → faults (what the flags break) → stage (the hosts' stand-in, its clock and
log) → the run command's own pipeline → report (timeline, answers, faults' effects, coverage).
"""
