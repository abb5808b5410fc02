"""A declarative YAML runbook engine: load, validate, plan, run, journal, checklist."""

__version__ = "0.1.0"
