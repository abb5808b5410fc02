"""A command on one SSH session channel, as `Executor.run` drives it: one reader thread for both streams,
the wrapper's group line taken out of stderr, and the go sent once the group is journaled."""

from __future__ import annotations

import threading
from collections.abc import Callable

import paramiko

from engine.executors import nodefiles
from engine.executors.base import Process
from engine.executors.jobs import Job, Sink, StreamText


class SSHProcess(Process):
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
