"""How big a command may be to start on a host over SSH, so an oversized one is named before it runs.

Measured against OpenSSH 9.6's sshd on Linux (a script holding a value of N bytes, `tests/test_run_ssh.py`):
up to ~130,000 bytes it runs; from ~131,000 the host's login shell refuses it (`bash: Argument list too
long`: every argument and every environment string of an exec is limited to 128 KiB, the kernel's
MAX_ARG_STRLEN, and the command reaches the host's shell as one argument); from 256 KiB sshd drops the
whole connection (`Bad packet length`, its packet limit), which the engine saw as "Connection reset by
peer". An `env:` value is exported before the script starts: over 128 KiB, the exec fails the same way.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

ARGUMENT_MAX = 128 * 1024
"""Bytes one argument or environment string may have on Linux (MAX_ARG_STRLEN, 32 pages), its NUL included."""
PACKET_MAX = 256 * 1024
"""Bytes sshd accepts in one packet (OpenSSH's PACKET_MAX_SIZE): the request carrying the command is one."""
WRAPPER_BYTES = 4096
"""What the remote wrapper adds around the script (`wrapper.command`: ~1,850 bytes, and the node files of
at most `nodefiles.DELETE_AT_ONCE` earlier commands to delete, ~1,300), with room to spare."""


def command_problem(script: str, cwd: str | None, env: Iterable[tuple[str, str]], linux: bool) -> str | None:
    """Why this command cannot start on the host, or None. The 128 KiB limit is Linux's (others, macOS,
    limit only the total); sshd's packet limit holds everywhere."""
    size = len(shlex.quote(script).encode()) + len((cwd or "").encode()) + WRAPPER_BYTES
    if size >= PACKET_MAX:
        return (
            f"the command is {_kib(size)}: over the {_kib(PACKET_MAX)} sshd accepts in one request, so the "
            "host would drop the connection (seen as 'connection reset'); keep big values out of the script "
            "(put them in a file on the host and read that)"
        )
    if linux and size >= ARGUMENT_MAX:
        return (
            f"the command is {_kib(size)}: over the {_kib(ARGUMENT_MAX)} one argument may have on Linux "
            "(MAX_ARG_STRLEN), so the host's shell would refuse it ('Argument list too long'); keep big "
            "values out of the script (put them in a file on the host and read that)"
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
