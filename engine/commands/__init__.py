"""One module per command-line verb; each takes parsed options and returns an exit code."""
