"""Local commands die with the engine: a watchdog process kills their process groups when the engine is gone.

Each local command runs in a session of its own (so a timeout or Ctrl-C can kill its whole group), which
also means nothing kills it when the engine itself is killed (SIGKILL, OOM killer, a closed terminal): a
later `--rerun-unknown` would then start a second copy beside the first. `PR_SET_PDEATHSIG` reaches only
the direct child, not the group, so instead one small watchdog process per engine holds the read end of a
pipe, learns which groups run (`+PGID` / `-PGID` lines) and, when the pipe closes without a goodbye (the
engine died), stops those groups: SIGTERM, then SIGKILL. A step that must outlive the engine starts its
own session (`setsid nohup daemon &`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

_SCRIPT = """
import os, signal, time
groups, pending = set(), b""
while True:
    data = os.read(0, 4096)
    if not data:
        break
    pending += data
    *lines, pending = pending.split(b"\\n")
    for line in lines:
        (groups.add if line[:1] == b"+" else groups.discard)(int(line[1:]))
for name in ("SIGTERM", "SIGKILL"):
    for group in groups:
        try:
            os.killpg(group, getattr(signal, name))
        except OSError:
            pass
    time.sleep(2 if name == "SIGTERM" and groups else 0)
"""

_lock = threading.Lock()
_pipe: int | None = None


def watch(pgid: int) -> None:
    """Kill group `pgid` if the engine dies before `unwatch(pgid)`."""
    _send(f"+{pgid}\n")


def unwatch(pgid: int) -> None:
    _send(f"-{pgid}\n")


def _send(line: str) -> None:
    global _pipe
    with _lock:
        if _pipe is None:
            _pipe = _start()
        try:
            os.write(_pipe, line.encode())
        except OSError:  # the watchdog is gone (killed by hand): commands simply lose this protection
            pass


def _start() -> int:
    read, write = os.pipe()
    subprocess.Popen(
        [sys.executable, "-S", "-c", _SCRIPT],
        stdin=read,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C at the terminal is for the engine, not for its watchdog
    )
    os.close(read)
    return write
