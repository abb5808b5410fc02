"""A host's control channel: preflight's probe session, held open for the kills and the node-file cleanup.

The probe (the kernel's name, as `uname -s` says it, and the program lookup) runs in a `sh` that, once it has
answered, prints a sentinel line and then reads lines of shell from the channel and runs them (`eval`;
builtins, no process of its own): `kill -TERM -PGID ...` for a timeout or an interrupt, and when the host is
closed (once no later step needs it, or at the run's end) the deletion of the node files of the commands that
ended (`engine.executors.nodefiles`). So a host costs its
node one session for all of that, not a probe session, a kill session per kill and a cleanup session at the
end (each one sshd's session setup plus a login shell). Each line is answered with a token line (before the
line runs, or after it), which tells the engine the node got it; the held `sh` ends at the end of its input —
when the engine closes, or the connection drops — so nothing of it outlives the connection.

The held channel takes the session slot a kill's own channel took (`MAX_SESSIONS` command channels + 1 is
sshd's MaxSessions); where it is gone (a reconnect after a drop, no probe ran), the executor opens a
session for each, as it did before.
"""

from __future__ import annotations

import secrets as random
import shlex
import threading
from collections.abc import Callable

import paramiko

from engine.errors import ConnectionFailed, PreflightFailed

Answer = tuple["Control | None", int | None, str, str]
"""What the probe gives: the held channel (None: the probe failed), and the failed probe's exit status
(None: none came), stdout and stderr; a held probe's stdout is what it printed before the sentinel."""


class Control:
    """The held `sh` on one session channel of a transport; thread-safe (one line at a time)."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel
        self._seen = b""
        self._lock = threading.Lock()
        self._ended = False

    def serves(self, transport: paramiko.Transport) -> bool:
        """Still there, on this transport (a reconnect makes a new one): its `sh` has not ended."""
        channel = self._channel
        return (
            channel.get_transport() is transport and transport.is_active() and not channel.exit_status_ready()
        )

    def run(self, line: str, timeout: float, answer_first: bool = False) -> bool | None:
        """Send one line of shell (with `answer_first`, the answer comes before it runs: for a line that
        ends the `sh`). True: answered within `timeout` seconds; False: no answer (a stalled peer); None: the
        channel is gone (its `sh` ended, the connection closed): not the peer's fault, ask another way."""
        with self._lock:
            return None if self._ended else self._run(line, timeout, answer_first)

    def _run(self, line: str, timeout: float, answer_first: bool) -> bool | None:
        token = random.token_hex(8)
        answer = f"printf '%s\\n' {token}"
        sent = f"{answer}; {line}\n" if answer_first else f"{line}; {answer}\n"
        try:
            self._channel.settimeout(timeout)
            self._channel.sendall(sent.encode())
            while f"{token}\n".encode() not in self._seen:
                chunk = self._channel.recv(4096)
                if not chunk:
                    return None
                self._seen += chunk
        except TimeoutError:
            return False
        except (paramiko.SSHException, OSError):
            return None
        self._seen = self._seen.split(f"{token}\n".encode(), 1)[1]
        return True

    def end(self, line: str | None, timeout: float) -> None:
        """The last line (if any) and the end of the input: the `sh` runs it and exits. Back once the `sh`
        has the line (its answer came; `timeout` bounds the wait), not once it ran it; never raises."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            if line is not None:
                self._run(line, timeout, answer_first=True)
            try:
                self._channel.shutdown_write()
            except (paramiko.SSHException, OSError):
                pass
            self._channel.close()


def probe(host: str, channel: paramiko.Channel, script: str, timeout: float) -> tuple[Control, list[str]]:
    """Run `script` (the lookup) after `uname -s` on `channel`, in a `sh` that is then held (`Control`); the
    lines it printed (the platform first). Raises PreflightFailed (with what the host said) when it fails."""
    control, code, out, err = _probe(host, channel, script, timeout)
    lines = out.splitlines()
    if control is None or not lines:
        said = "\n".join(err.rstrip("\n").split("\n")[-3:])
        raise no_platform(host, "`uname -s` (and `command -v`)", code, said)
    return control, lines


def kill_alone(open_session: Callable[[], paramiko.Channel], kill: str, timeout: float) -> bool:
    """`kill` on a session channel of its own (no control channel): True once it ran within `timeout`."""
    try:
        channel = open_session()
        try:
            channel.exec_command(f"{kill}; true")
            return channel.status_event.wait(timeout)
        finally:
            channel.close()
    except (paramiko.SSHException, OSError, ConnectionFailed):
        return False


def no_platform(host: str, what: str, code: int | None, said: str) -> PreflightFailed:
    return PreflightFailed(
        f"{host}: {what} failed ({'no exit status' if code is None else f'exit {code}'}): "
        + (
            said
            or "no output at all; the login shell of the account (or a ForceCommand) may "
            "exit before running any command: check its shell and its profile on the host"
        )
    )


# What `uname -s` prints, with no process where the kernel is Linux: the first word of /proc/version, read by
# the `read` builtin (`uname` is a fork and an exec per host, ~1 ms of the node's CPU here); elsewhere (no
# /proc/version: macOS, the BSDs) `uname -s` itself.
_KERNEL = (
    '{ read -r _rb_k _rb_x </proc/version && [ "$_rb_k" = Linux ] && echo Linux; } 2>/dev/null || uname -s'
)


def _probe(host: str, channel: paramiko.Channel, script: str, timeout: float) -> Answer:
    sentinel = f"runbook-control-{random.token_hex(8)}"
    held = (
        f"{_KERNEL} || exit; {script}; printf '%s\\n' {sentinel}; "
        'while IFS= read -r _rb_l; do eval "$_rb_l"; done'
    )
    try:
        channel.settimeout(timeout)
        channel.exec_command(f"exec sh -c {shlex.quote(held)}")
        out, end = b"", f"{sentinel}\n".encode()
        while not (out.startswith(end) or b"\n" + end in out):
            chunk = channel.recv(4096)
            if not chunk:  # the `sh` ended before the sentinel: the probe failed, say how
                err = channel.makefile_stderr("rb").read()
                code = channel.exit_status if channel.status_event.wait(timeout) else -1
                channel.close()
                text = out.decode(errors="replace"), err.decode(errors="replace")
                return None, (None if code == -1 else code), *text
            out += chunk
    except TimeoutError:
        channel.close()
        raise PreflightFailed(
            f"{host}: no answer for {timeout:g}s to `uname -s` (and `command -v`)"
        ) from None
    except (paramiko.SSHException, OSError) as error:
        channel.close()
        raise ConnectionFailed(f"{host}: lost the connection during `uname -s`: {error}") from None
    return Control(channel), 0, out[: len(out) - len(end)].decode(errors="replace"), ""
