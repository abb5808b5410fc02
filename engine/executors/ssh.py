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
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, suppress

import paramiko

from engine.errors import ConnectionFailed, PreflightFailed
from engine.executors import heartbeat, nodefiles, sshcontrol
from engine.executors.base import Executor, Invocation, Process, lookup_script
from engine.executors.jobs import Job, Sink, StreamText
from engine.executors.nodefiles import Ended
from engine.executors.sshconnect import close_chain, open_chain, resolve
from engine.executors.wrapper import command as _command
from engine.executors.wrapper import environment as _environment
from engine.transports import SSHOptions, SSHTarget

__all__ = ["MAX_SESSIONS", "SSHExecutor", "resolve"]

MAX_SESSIONS = 9
"""Command channels open at once per host: sshd's MaxSessions defaults to 10; one is the control channel's."""
_OPEN_TRIES = 10  # 10 ms, 20 ms, ... : at most ~0.5 s of retrying a refused session
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
        channel = self._open_session(self._transport())
        marker = f"runbook-pgid-{random.token_hex(8)}"
        delete = self._ended.take()
        command = _command(
            marker, invocation.shell, invocation.cwd, invocation.script, nodefiles.names(delete)
        )
        try:  # until the environment's last line is sent, the wrapper cannot start the script
            channel.exec_command(command)
            channel.sendall(_environment({**invocation.env, **invocation.secrets}))
        except (paramiko.SSHException, OSError) as error:
            channel.close()
            self._ended.add(*delete)  # not deleted: the next command (or `close`) tries again
            raise ConnectionFailed(f"{self.host}: cannot start a command: {error}") from None
        return _SSHProcess(channel, marker, self._lost_reason, job, self._ended.add)  # go: `_GroupMarker`

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


class _SSHProcess(Process):
    """A command on one session channel; its stderr starts with the wrapper's process-group line."""

    join_grace = 5.0

    def __init__(
        self,
        channel: paramiko.Channel,
        marker: str,
        lost: Callable[[], str],
        job: Job,
        ended: Callable[[str], None],
    ) -> None:
        self._channel, self._marker, self._lost_reason = channel, marker, lost
        self._job, self._heard_end = job, ended

    def read_stdout(self, size: int) -> bytes:
        return self._channel.recv(size)

    def read_stderr(self, size: int) -> bytes:
        return self._channel.recv_stderr(size)

    def wait(self) -> object:
        return self._channel.recv_exit_status()

    def returncode(self) -> int | None:
        """None when the channel closed without an exit status: the connection died under the command."""
        status = self._channel.exit_status if self._channel.exit_status_ready() else -1
        return None if status == -1 else status

    def connection_lost(self) -> str | None:
        transport = self._channel.get_transport()
        if self._channel.exit_status != -1 or (transport is not None and transport.is_active()):
            return None  # an exit status came, or the channel alone closed (not the connection)
        return self._lost_reason()

    def readers(self, stdout: Sink, stderr: Sink, job: Job, name: str) -> list[threading.Thread]:
        """One thread for both streams: the channel's two buffers tell one condition when they have data or
        end, so a command costs one reader thread (not two) and one wake-up per arrival."""
        ready = threading.Condition()
        flags = _Ready(ready), _Ready(ready)
        self._channel.in_buffer.set_event(flags[0])
        self._channel.in_stderr_buffer.set_event(flags[1])
        streams = [
            (flags[0], self._channel.recv, stdout, self.wait),
            (flags[1], self._channel.recv_stderr, stderr, None),
        ]

        def drain() -> None:
            try:
                while streams:
                    with ready:
                        ready.wait_for(lambda: any(flag.is_set() for flag, *_ in streams))
                    for stream in list(streams):
                        flag, read, sink, then = stream
                        if not flag.is_set():
                            continue
                        if chunk := read(65536):  # data is there, or the stream ended: never blocks
                            sink.feed(chunk)
                            continue
                        streams.remove(stream)
                        sink.finish()
                        if then is not None:
                            then()
                        job.part_done()
            finally:
                for _ in streams:  # ended by an exception: the job must still end
                    job.part_done()

        thread = threading.Thread(target=drain, name=f"{name}-output", daemon=True)
        thread.start()
        return [thread]

    def stderr_sink(self, stream: StreamText, job: Job) -> Sink:
        return _GroupMarker(self._marker, stream, job, self._go)

    def _go(self, start: bool) -> None:
        """End our side of the input; the group is journaled (`start`): a newline first lets the script start."""
        try:
            if start:
                self._channel.sendall(b"\n")
            self._channel.shutdown_write()
        except (paramiko.SSHException, OSError):
            pass  # the connection is going: the script never starts (EOF) or the process reports it lost

    def abandon(self) -> None:
        self._channel.close()  # the kill did not end it (or no group was ever reported): stop reading

    def close(self, drained: bool) -> None:
        """An exit status came: the run journals this end next, so the node's copy is not needed any more."""
        self._channel.close()
        if self._channel.exit_status_ready() and self._job.pgid is not None:
            self._heard_end(nodefiles.ident(self._job.pgid, self._job.started))


class _Ready(threading.Event):
    """The event paramiko's channel buffer sets when it has data or has ended (and clears once drained);
    setting it also wakes the channel's one reader, which waits on a condition shared by both streams."""

    def __init__(self, ready: threading.Condition) -> None:
        super().__init__()
        self._ready = ready

    def set(self) -> None:
        with self._ready:
            super().set()
            self._ready.notify()


class _GroupMarker:
    """Sits in front of stderr: takes out the wrapper's "<marker> <pgid>" line, records the group, then `go`."""

    def __init__(self, marker: str, stream: StreamText, job: Job, go: Callable[[bool], None]) -> None:
        self._marker = marker.encode() + b" "
        self._stream = stream
        self._job = job
        self._go = go
        self._pending = b""
        self._found = False

    def feed(self, data: bytes) -> None:
        if self._found:
            self._stream.feed(data)
            return
        self._pending += data
        while not self._found and b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            words = line[len(self._marker) :].split() if line.startswith(self._marker) else []
            if words and words[0].isdigit():
                self._found = True
                started = words[1].decode() if len(words) > 1 and words[1].isdigit() else None
                self._go(self._job.set_pgid(int(words[0]), started))  # False: not journaled, no go
            else:  # something the wrapper itself said before starting the script
                self._stream.feed(line + b"\n")
        if self._found and self._pending:
            self._stream.feed(self._pending)
            self._pending = b""

    def finish(self) -> None:
        self._stream.feed(self._pending)
        self._stream.finish()
