"""Exports: the plan rendered for another engine (Ansible), built from the same `Plan` the dry run shows."""
