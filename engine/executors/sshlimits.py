"""How big a command may be to start on a host over SSH, so an oversized one is named before it runs.

The command reaches the host on the session's input (`wrapper.job`), and the script's shell gets it as one
argument (`sh -ec SCRIPT`). Measured against OpenSSH 9.6's sshd on Linux (a script holding a value of N
bytes, `tests/test_run_ssh.py`): every argument and every environment string of an exec is limited to
128 KiB there (the kernel's MAX_ARG_STRLEN), so from ~131,000 bytes the script's shell cannot start
(`Argument list too long`); an `env:` value is exported before the script starts: over 128 KiB, the exec
fails the same way. Elsewhere only the whole argument list is limited (ARG_MAX: 256 KiB on some systems, 1
MiB on macOS); a script is refused from 256 KiB everywhere (it was the request limit of sshd when the script
travelled in the command line, and a script that size belongs in a file on the host).
"""

from __future__ import annotations

from collections.abc import Iterable

ARGUMENT_MAX = 128 * 1024
"""Bytes one argument or environment string may have on Linux (MAX_ARG_STRLEN, 32 pages), its NUL included."""
SCRIPT_MAX = 256 * 1024
"""Bytes a script may have on any host: ARG_MAX on the smallest systems, and far more than a step needs."""


def command_problem(script: str, env: Iterable[tuple[str, str]], linux: bool) -> str | None:
    """Why this command cannot start on the host, or None. The 128 KiB limit is Linux's (others limit
    only the total)."""
    size = len(script.encode()) + 1
    if size >= SCRIPT_MAX:
        return (
            f"the script is {_kib(size)}: over the {_kib(SCRIPT_MAX)} a script may have on any host (the whole "
            "argument list of some systems); keep big values out of the script (put them in a file on the "
            "host and read that)"
        )
    if linux and size >= ARGUMENT_MAX:
        return (
            f"the script is {_kib(size)}: over the {_kib(ARGUMENT_MAX)} one argument may have on Linux "
            "(MAX_ARG_STRLEN), so its shell could not start ('Argument list too long'); keep big values out "
            "of the script (put them in a file on the host and read that)"
        )
    for name, value in env:
        if linux and len(f"{name}={value}".encode()) >= ARGUMENT_MAX:
            return (
                f"env {name} is {_kib(len(value.encode()))}: over the {_kib(ARGUMENT_MAX)} one environment "
                "string may have on Linux (MAX_ARG_STRLEN), so the command could not start ('Argument list "
                "too long'); put the value in a file on the host and read that"
            )
    return None


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"
