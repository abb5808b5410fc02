"""A remote command's output and exit status kept on its node, so the command outlives the engine.

The SSH wrapper (`engine.executors.ssh`) starts the script with its stdout and stderr on two FIFOs, each read
by a `tee` that copies to the session channel (the live view) and to a file in `DIR`; the `tee`s ignore
SIGPIPE, so when the engine is killed or the connection drops they go on writing the files and the script
never meets a broken pipe. The wrapper writes the script's exit status beside them when it ends. All the
files of one command are named for its process group and its leader's start time (`ident`): exactly what the
journal's `process-group` record holds, so a resume finds them with no other record.

Each output file keeps the first `CAP` bytes of its stream (`ulimit -f` on its `tee`); the live view has all
of it. The engine deletes a command's files once its exit status came over the channel — with a later
command's wrapper on that host, eight commands' at a time (no round trip of its own), or when the executor
closes (a line on the host's control channel, `engine.executors.sshcontrol`) — and a resume deletes those it
read once the outcome is journaled. What a crash leaves (files of a command whose status never reached the
engine, and of up to 7 that ended) is kept `KEEP_DAYS` days for a resume, then swept when a later run closes
there.
"""

from __future__ import annotations

import secrets as random
import shlex
import threading
from dataclasses import dataclass

DIR = ".runbook/out"
"""Under the login directory of the node's account; the directory is made mode 0700, each file 0600."""
CAP = 8 << 20
"""Bytes of each stream kept on the node (a multiple of 512: `ulimit -f` counts 512-byte blocks in sh)."""
KEEP_DAYS = 7
"""Days the files of a command whose end the engine never heard of wait for a resume."""
DELETE_AT_ONCE = 8
"""Earlier commands whose files one command's wrapper deletes, once that many ended: one `rm` for 8 commands
(less CPU on the host), and a command line that stays small."""
TAIL_LINES = 20
"""Lines of each stream a resume shows and journals (as many as a step-end's tails)."""
_SUFFIXES = (".out", ".err", ".status", ".o", ".e")  # output, exit status, and the two FIFOs


@dataclass(frozen=True)
class Ended:
    """A command that ended on its node with nobody listening: its exit status and its output's last lines."""

    exit_code: int
    stdout: str
    stderr: str
    cut: tuple[str, ...] = ()
    """The streams ("stdout", "stderr") that passed `CAP`: their node files hold only the first `CAP` bytes."""


class Heard:
    """The commands whose end an executor heard (their exit status came), until their files are deleted."""

    def __init__(self) -> None:
        self._idents: list[str] = []
        self._lock = threading.Lock()

    def add(self, *idents: str) -> None:
        with self._lock:
            self._idents.extend(idents)

    def take(self, batch: int | None = DELETE_AT_ONCE) -> list[str]:
        """`batch` of them once there are that many (else none); None: all there are."""
        with self._lock:
            if batch is not None and len(self._idents) < batch:
                return []
            taken, self._idents = self._idents[:batch], self._idents[batch:]
        return taken


def ident(pgid: int, started: str | None) -> str:
    """The files' common name: the group id and the leader's start time, as the wrapper spells them."""
    return f"{pgid}-{started if started is not None and started.isdigit() else ''}"


def names(idents: list[str]) -> list[str]:
    """Every file the wrapper may leave for these commands."""
    return [name + suffix for name in idents for suffix in _SUFFIXES]


def forget_script(idents: list[str], sweep: bool = False) -> str:
    """Delete these commands' files; with `sweep`, also whatever a crash left there over `KEEP_DAYS` ago —
    looked for with `find` only when something is left once ours are gone (a glob, no process): a run's end
    usually leaves the directory empty, and a `find` per host and run is CPU the host's sshd shares."""
    words = " ".join(shlex.quote(name) for name in names(idents))
    old = (
        f' set -- *; [ -e "$1" ] || [ -L "$1" ] || exit 0; find . -mtime +{KEEP_DAYS} -exec rm -f {{}} + 2>/dev/null;'
        if sweep
        else ""
    )
    return f'cd "$HOME"/{DIR} 2>/dev/null || exit 0; rm -f -- {words};{old} exit 0'


def read_script(name: str) -> tuple[str, str]:
    """A script printing the exit status, both streams' sizes and last lines (exit 3: no status there);
    and the line that separates the two tails."""
    separator = f"runbook-{random.token_hex(8)}"
    files = {suffix: shlex.quote(name + suffix) for suffix in (".status", ".out", ".err", ".o")}
    script = (  # the group just ended: its wrapper may be a moment from writing the status (a second at most)
        f'cd "$HOME"/{DIR} 2>/dev/null || exit 3; [ -s {files[".status"]} ] || [ ! -p {files[".o"]} ] || sleep 1; '
        f"[ -s {files['.status']} ] || exit 3; "
        f'read -r c < {files[".status"]}; printf "%s\\n" "$c"; '
        f'for f in {files[".out"]} {files[".err"]}; do wc -c 2>/dev/null < "$f" || echo 0; done; '
        f"tail -n {TAIL_LINES} {files['.out']} 2>/dev/null; printf '\\n%s\\n' {separator}; "
        f"tail -n {TAIL_LINES} {files['.err']} 2>/dev/null; exit 0"
    )
    return script, separator


def parse(text: str, separator: str) -> Ended | None:
    """What `read_script` printed; None for anything it cannot have printed (nothing to trust)."""
    head, _, rest = text.partition("\n")
    sizes = []
    for _ in range(2):
        size, _, rest = rest.partition("\n")
        sizes.append(size.strip())
    out_size, err_size = sizes
    stdout, found, stderr = rest.partition(f"\n{separator}\n")
    if not (head.strip().isdigit() and out_size.isdigit() and err_size.isdigit() and found):
        return None
    cut = tuple(name for name, size in (("stdout", out_size), ("stderr", err_size)) if int(size) >= CAP)
    return Ended(int(head), stdout, stderr, cut)
