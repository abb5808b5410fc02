"""`python -m engine …` is the `runbook` command, for when the console script is not on PATH."""

from engine.cli import main

main()
