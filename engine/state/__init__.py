"""placeholder until the state branch lands."""
