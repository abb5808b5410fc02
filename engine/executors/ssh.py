"""Runs scripts on a remote host: one paramiko transport per host, one session channel per command.

Closing a channel does not stop the remote process, so every command runs under a small POSIX sh wrapper
(`engine.executors.wrapper`) that starts it in a process group of its own, reports that group's id as the
first line of stderr (which we strip) and keeps its output and exit status on the node, so it outlives a
killed engine or a dropped connection (`engine.executors.nodefiles`). A timeout or `kill_all()` runs
`kill -TERM -PGID`, later `kill -KILL -PGID`, on the host's control channel (`engine.executors.sshcontrol`:
the preflight probe's session, held), or on a channel of its own where that is gone.
"""

from __future__ import annotations

import secrets as random
import shlex
import threading
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, suppress

import paramiko

from engine.errors import ConnectionFailed, PreflightFailed
from engine.executors import heartbeat, nodefiles, sshcontrol, wrapper
from engine.executors.base import CannotStart, Executor, Invocation, Process, lookup_script
from engine.executors.jobs import Job
from engine.executors.nodefiles import Ended
from engine.executors.sshconnect import close_chain, open_chain, resolve
from engine.executors.sshprocess import SSHProcess
from engine.executors.sshspare import Spare
from engine.transports import SSHOptions, SSHTarget

__all__ = ["MAX_SESSIONS", "SSHExecutor", "resolve"]

MAX_SESSIONS = 9
"""Command channels open at once per host: sshd's MaxSessions defaults to 10; one is the control channel's."""
_OPEN_TRIES = 10  # 10 ms, 20 ms, ... : at most ~0.5 s of retrying a refused session
_SPARE_TRIES = 3  # a spare is not worth more than ~30 ms of retrying (in the background)
_KILL_WAIT = 5.0  # seconds for the kill's channel to open and report: a slower peer is presumed dead
_ALIVE_COUNT_MAX = 3  # OpenSSH's default ServerAliveCountMax
_PROBE_WAIT = 30.0  # seconds for preflight's probe to answer


class SSHExecutor(Executor):
    """A remote host; connects lazily on first use, or eagerly through `connect()` (preflight)."""

    def __init__(self, target: SSHTarget, options: SSHOptions | None = None) -> None:
        super().__init__(target.name)
        self.options = options or SSHOptions()
        self.target = resolve(target, self.options)
        self._chain: list[paramiko.SSHClient] = []
        self._connect_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._kill_lock = threading.Lock()  # one control or kill channel: 9 sessions + 1 = MaxSessions
        self._control: sshcontrol.Control | None = None  # the probe's session, held for kills and cleanup
        self._spare = Spare()  # the next command's session, opened ahead (`warm`)
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)
        self._platform: str | None = None
        self._lost: str | None = None  # why the last transport was declared dead
        self._ended = nodefiles.Heard()  # ended commands: their node files go with a later command

    def connect(self) -> None:
        """Connect now (preflight does, for every host, before anything runs); raises ConnectionFailed,
        or HostKeyError when the host's key is unknown or has changed. Idempotent."""
        self._transport()

    @property
    def transport(self) -> paramiko.Transport | None:
        """The host's one transport, once connected."""
        return self._chain[-1].get_transport() if self._chain else None

    def slot(self) -> AbstractContextManager[object]:
        """A command holds one of the host's session channels while it runs."""
        return self._sessions

    def start(self, job: Job, invocation: Invocation) -> Process:
        if "\n" in invocation.shell:  # the wrapper reads it as one line (`wrapper.job`)
            raise CannotStart(f"no such shell: {invocation.shell!r}")
        transport = self._transport()
        marker = f"runbook-pgid-{random.token_hex(8)}"
        delete = self._ended.take()
        try:  # until the environment's last line is sent, the wrapper cannot start the script
            channel = self._given(
                transport,
                wrapper.job(
                    marker, invocation.shell, invocation.cwd, invocation.script, nodefiles.names(delete)
                )
                + wrapper.environment({**invocation.env, **invocation.secrets}),
            )
        except BaseException:
            self._ended.add(*delete)  # not deleted: the next command (or `close`) tries again
            raise
        return SSHProcess(channel, marker, self._lost_reason, job, self._ended.add)  # go: `_GroupMarker`

    def _given(self, transport: paramiko.Transport, sent: bytes) -> paramiko.Channel:
        """A session whose wrapper has the command and its environment: the spare, else one opened now."""
        spare = self._spare.take(transport)
        if spare is not None:
            try:
                spare.sendall(sent)
                return spare
            except (paramiko.SSHException, OSError, EOFError):
                spare.close()  # gone while it waited (its wrapper got nothing whole): a session of its own
        channel = self._open_session(transport)
        try:
            channel.exec_command(wrapper.command())
            channel.sendall(sent)
        except (paramiko.SSHException, OSError, EOFError) as error:
            channel.close()
            raise ConnectionFailed(f"{self.host}: cannot start a command: {error}") from None
        return channel

    def warm(self) -> None:
        """Open the next command's session now, while the host runs nothing (`sshspare`); never raises: a
        spare is only ever a head start, and whatever failed here the next command meets on its own."""
        transport = self.transport
        if transport is None or not transport.is_active() or not self._jobs.empty():
            return
        with suppress(Exception):  # paramiko raises EOFError too, when the host closes the connection
            self._spare.open(lambda: self._open_spare(transport), transport)

    def _open_spare(self, transport: paramiko.Transport) -> paramiko.Channel | None:
        """The spare's session with its wrapper started; None: the host refused the session three times in
        a row (sshd frees a closed session's slot a moment late: see `_open_session`; MaxSessions is all)."""
        for attempt in range(1, _SPARE_TRIES + 1):
            try:
                with self._open_lock:
                    channel = transport.open_session(timeout=self.options.connect_timeout)
                break
            except paramiko.ChannelException:
                if attempt == _SPARE_TRIES:
                    return None
                time.sleep(0.01 * attempt)
        try:
            channel.exec_command(wrapper.command())
        except BaseException:
            channel.close()
            raise
        return channel

    def ended(self, pgid: int, started: str | None) -> Ended | None:
        """How the group's command ended, from the files the wrapper left on the node (one round trip)."""
        script, separator = nodefiles.read_script(nodefiles.ident(pgid, started))
        code, out, _ = self._bare(script, _PROBE_WAIT)
        return nodefiles.parse(out, separator) if code == 0 else None

    def forget(self, pgid: int, started: str | None) -> None:
        """Delete the node files of a command whose outcome is journaled now."""
        self._bare(nodefiles.forget_script([nodefiles.ident(pgid, started)]), _PROBE_WAIT)

    def platform(self) -> str:
        if self._platform is None:
            result = self.run("uname -s", timeout=30)
            if not result.ok:
                said = result.tail("stderr", 3) or result.tail("stdout", 3)
                raise sshcontrol.no_platform(self.host, "`uname -s`", result.exit_code, said)
            self._platform = result.stdout.strip().lower()
        return self._platform

    def group_alive(self, pgid: int, started: str | None) -> bool:
        """`kill -0 -PGID` on the host, then (where `ps` exists) a live member that is not a zombie: an exited
        command's processes nobody reaped yet still answer `kill -0`. A leader whose start time is not the
        journaled one means the id was reused (where the host has /proc; elsewhere `started` is None)."""
        reused = (
            f'[ -r /proc/{pgid}/stat ] && [ "$(cut -d " " -f 22 /proc/{pgid}/stat)" != {started} ] && exit 1; '
            if started is not None and started.isdigit()
            else ""
        )
        script = (
            f"kill -0 -{pgid} 2>/dev/null || exit 1; {reused}command -v ps >/dev/null 2>&1 || exit 0; "
            f"ps -e -o pgid= -o stat= | awk -v g={pgid} '$1 == g && $2 !~ /^Z/ {{n++}} END {{exit n ? 0 : 1}}'"
        )
        result = self.run(script, timeout=30)
        if result.exit_code not in (0, 1):
            raise ConnectionFailed(
                f"{self.host}: cannot tell whether process group {pgid} still runs: "
                f"{result.tail('stderr', 3) or f'exit {result.exit_code}'}"
            )
        return result.exit_code == 0

    def probe(self, programs: Iterable[str]) -> tuple[str, list[str]]:
        """`uname -s` and the program lookup in one command: preflight's one round trip to the host; its
        session is then held as the host's control channel (`engine.executors.sshcontrol`).

        Run by `sh` straight from the login shell, not under the command wrapper: it starts nothing that
        could outlive the connection (builtins, `uname` where there is no /proc/version, and `rm` at the end),
        so it needs no process group of its own to be stopped by, and a Linux host starts one shell instead of
        the wrapper's processes — CPU that hundreds of sshd's share with us on a small machine."""
        names = list(programs)
        with self._kill_lock:  # the control channel takes the kill channel's session slot
            if self._control is not None:  # probed again: one control channel, never two
                self._control.end(None, 0)
            self._control, lines = sshcontrol.probe(
                self.host,
                self._open_session(self._transport()),
                lookup_script(names) if names else ":",
                _PROBE_WAIT,
            )
        self._platform = lines[0].strip().lower()
        return self._platform, lines[1:]

    def _bare(self, script: str, timeout: float, wait: bool = True) -> tuple[int | None, str, str]:
        """Exit status (None: none came), stdout and stderr of `sh -c script` run on a session channel of
        its own, stdin at EOF. Only for a script that ends by itself; `close()` (it closes the transport)
        ends the wait early. Without `wait`: back once sshd said it started the script (nothing to read)."""
        with self._sessions:
            channel = self._open_session(self._transport())
            try:
                channel.settimeout(timeout)
                channel.exec_command(f"exec sh -c {shlex.quote(script)}")
                channel.shutdown_write()
                if not wait:
                    return None, "", ""
                out = channel.makefile("rb").read()  # tiny on both streams: far below the channel window
                err = channel.makefile_stderr("rb").read()
                code = channel.exit_status if channel.status_event.wait(timeout) else -1
            except TimeoutError:
                raise PreflightFailed(f"{self.host}: no answer for {timeout:g}s to `{script}`") from None
            except (paramiko.SSHException, OSError) as error:
                raise ConnectionFailed(
                    f"{self.host}: lost the connection during `{script}`: {error}"
                ) from None
            finally:
                channel.close()
        text = out.decode(errors="replace"), err.decode(errors="replace")
        return (None if code == -1 else code), *text

    def close(self) -> None:
        """Stop what still runs (closing alone would leave it running on the host), delete the node files
        of the commands that ended (and whatever a crash left there long ago), then disconnect."""
        self.kill_all()
        self._spare.close()
        self._delete_ended()
        with self._connect_lock:
            close_chain(self._chain)
            self._chain = []

    def _delete_ended(self) -> None:
        """A line on the control channel, else (if something ran and the connection stands) a session of its
        own; not waited for: the node has it, and closing does not stop it."""
        delete, transport = self._ended.take(None), self.transport
        control, self._control = self._control, None  # not under the kill lock: a probe may hold it
        script = nodefiles.forget_script(delete, sweep=True) if delete else None
        if control is not None and transport is not None and control.serves(transport):
            control.end(script, _KILL_WAIT)
        elif script is not None and transport is not None and transport.is_active():
            with suppress(ConnectionFailed, PreflightFailed):
                self._bare(script, _KILL_WAIT, wait=False)

    def _transport(self) -> paramiko.Transport:
        """The live transport, connecting first if there is none (or it died: reconnect, keys checked again)."""
        with self._connect_lock:
            transport = self.transport
            if transport is not None and transport.is_active():
                return transport
            close_chain(self._chain)
            self._chain = []
            self._chain = open_chain(self.target, self.options)
            transport = self.transport
            assert transport is not None
            self._lost = None
            interval = self.target.alive_interval or float(self.options.keepalive)
            heartbeat.watch(transport, interval, self.target.alive_count_max or _ALIVE_COUNT_MAX, self._dead)
            return transport

    def _dead(self, reason: str) -> None:
        self._lost = reason

    def _lost_reason(self) -> str:
        return self._lost or "the connection closed"

    def _open_session(self, transport: paramiko.Transport, timeout: float | None = None) -> paramiko.Channel:
        """A new session channel, opened one at a time: paramiko hands a failed open's reason to whichever
        thread asks first. sshd frees a session slot only after the loop iteration that handled our close,
        so an open right behind a close can be refused though we stay under MaxSessions: retry that."""
        with self._open_lock:
            for attempt in range(1, _OPEN_TRIES + 1):
                try:
                    return transport.open_session(timeout=timeout or self.options.connect_timeout)
                except paramiko.ChannelException as error:
                    if attempt == 1 and self._spare.drop():  # an idle spare holds a session: free it
                        continue
                    if attempt == _OPEN_TRIES:
                        raise ConnectionFailed(f"{self.host}: sshd refuses new sessions: {error}") from None
                    if attempt == _OPEN_TRIES // 2 and (control := self._control) is not None:
                        self._control = None  # sshd's MaxSessions is 1: the control frees its slot
                        control.end(None, 0)
                    time.sleep(0.01 * attempt)
                except (paramiko.SSHException, OSError) as error:
                    raise ConnectionFailed(f"{self.host}: cannot open an SSH session: {error}") from None
        raise AssertionError("unreachable")

    def signal_groups(self, pgids: list[int], name: str) -> None:
        """`kill -TERM -PGID ...` on the host: a line on its control channel, else on a channel of its own.

        Never reconnects: with the connection gone, a Ctrl-C must not wait out a connect timeout."""
        transport = self.transport
        if not pgids or transport is None or not transport.is_active():
            return
        kill = f"kill -{name} {' '.join(f'-{pgid}' for pgid in pgids)} 2>/dev/null"
        with self._kill_lock:
            control = self._control if self._control is not None and self._control.serves(transport) else None
            answered = control.run(kill, _KILL_WAIT) if control is not None else None
            if answered is None:
                answered = sshcontrol.kill_alone(
                    lambda: self._open_session(transport, _KILL_WAIT), kill, _KILL_WAIT
                )
            if not answered and transport.is_active():
                # A stalled peer: a timeout must still end the step now, not when (if) the peer wakes up.
                self._lost = f"no answer for {_KILL_WAIT:g}s while stopping the command"
                transport.close()
