"""The plumbing of the executor template: output streams read by threads, and jobs that can be killed.

A `Job` is one running command as `kill_all()` sees it. `Executor.run()` `supervise()`s it; a timeout or
an interrupt stops its process group in stages (`stop_groups`). Only the signalling differs per executor:
`os.killpg` locally, `kill` over a second channel remotely.
"""

from __future__ import annotations

import codecs
import collections
import threading
import time
from collections.abc import Callable
from typing import Protocol

OutputCallback = Callable[[str, str], None]
"""(stream "stdout"|"stderr", line without its newline); called from reader threads as lines arrive."""

KILL_GRACE = 2.0
"""Seconds a killed command gets between SIGTERM and SIGKILL (nox uses the same staged shutdown)."""


KEPT = 1 << 20
"""Characters of one stream kept in memory: half from its start, half from its end. Every line still goes
to the callback (the step's output file has them all); what expectations, `steps.<id>.stdout` and the
journal's tails see of a longer stream is its first and last lines around a note of what was left out —
so 250 hosts printing without end cannot exhaust the engine's memory."""


class StreamText:
    """One output stream: decoded incrementally (UTF-8, errors replaced) and split into lines as it arrives.

    A multi-byte character or a line may straddle two reads; the incremental decoder and `_partial` carry
    the unfinished piece over so the callback only ever sees whole lines. What `text()` returns is bounded
    by `KEPT`, cut at line ends (so a secret on a line is kept whole or left out whole, never in part).
    """

    def __init__(self, name: str, on_output: OutputCallback | None, kept: int = KEPT) -> None:
        self.name = name
        self.error: BaseException | None = None
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._half = kept // 2
        self._head: list[str] = []
        self._head_size = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0
        self._dropped = False
        self._partial: list[str] = []

    def feed(self, data: bytes) -> None:
        self._add(self._decoder.decode(data))

    def finish(self) -> None:
        """End of stream: flush the decoder and report a last line that had no newline."""
        self._add(self._decoder.decode(b"", final=True))
        if self._partial:
            self._emit(["".join(self._partial)])
            self._partial = []

    def text(self) -> str:
        """The stream, or (past `KEPT`) its first and last whole lines around a note of the cut."""
        head, tail = "".join(self._head), "".join(self._tail)
        if not self._dropped:  # all of it
            return head + tail
        head = head[: head.rfind("\n") + 1]  # whole lines only on both sides of the cut
        cut = tail.find("\n")
        tail = tail[cut + 1 :] if cut >= 0 else ""  # no line end: all of it is the middle of one line
        return f"{head}[runbook: output cut here; the step's output file has all of it]\n{tail}"

    def _keep(self, text: str) -> None:
        room = self._half - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
            if not text:
                return
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size > self._half:
            excess, first = self._tail_size - self._half, self._tail[0]
            self._dropped = True
            if len(first) <= excess:
                self._tail.popleft()
                self._tail_size -= len(first)
            else:
                self._tail[0] = first[excess:]
                self._tail_size -= excess

    def _add(self, text: str) -> None:
        if not text:
            return
        self._keep(text)
        if self._on_output is None or self.error is not None:
            return
        if "\n" not in text:
            self._partial.append(text)
            return
        first, *rest = text.split("\n")
        self._emit(["".join(self._partial) + first, *rest[:-1]])
        self._partial = [rest[-1]] if rest[-1] else []

    def _emit(self, lines: list[str]) -> None:
        """Call back; a failing callback is kept for `run()` to re-raise, and reading goes on regardless
        (a reader that stopped would fill the pipe or channel window and hang the command). After the
        first failure the callback is not called again: the first error is the one worth seeing."""
        if self._on_output is None or self.error is not None:
            return
        try:
            for line in lines:
                self._on_output(self.name, line)
        except BaseException as error:
            self.error = error


GroupCallback = Callable[[int, "str | None"], None]
"""(process group id, its leader's start time or None): told once, as soon as the executor knows the group."""


class Job:
    """One running command as the kill machinery sees it; shared between `run()` and `kill_all()`."""

    def __init__(self, on_group: GroupCallback | None = None) -> None:
        self.pgid: int | None = None
        self.started: str | None = None  # the group leader's start time, where the host tells it
        self._on_group = on_group
        self.group_error: BaseException | None = None  # `on_group` failed: the script got no go
        self.interrupted = False
        self.timed_out = False
        self.done = threading.Event()
        self.wake = threading.Event()
        self.pgid_known = threading.Event()
        self._parts = 2  # the stdout and the stderr reader
        self._claimed = False
        self._lock = threading.Lock()

    def set_pgid(self, pgid: int, started: str | None = None) -> bool:
        """The command's group is known: tell `on_group` first (the journal has it before a kill can come).

        True: give the script its go. False: `on_group` failed (the group is not in the journal), so the
        script must never start; the error is kept for `run()` to raise once the waiting wrapper is gone."""
        if self._on_group is not None:
            try:
                self._on_group(pgid, started)
            except BaseException as error:
                self.group_error = error
        self.pgid, self.started = pgid, started
        self.pgid_known.set()
        self.wake.set()
        return self.group_error is None

    def part_done(self) -> None:
        """A reader finished; the job is done when all of them have (output drained, exit status known)."""
        with self._lock:
            self._parts -= 1
            if self._parts == 0:
                self.done.set()
                self.wake.set()

    def interrupt(self) -> None:
        """Ctrl-C, or output that cannot be delivered: a job that has already finished keeps its outcome."""
        with self._lock:
            if self.done.is_set():
                return
            self.interrupted = True
        self.wake.set()

    def claim_kill(self) -> bool:
        """True for the one caller (timeout or kill_all) that gets to signal this job's process group."""
        with self._lock:
            if self._claimed or self.pgid is None:
                return False
            self._claimed = True
            return True


class JobTable:
    """The commands an executor is running, so `kill_all()` (another thread) can find and stop them."""

    def __init__(self) -> None:
        self._jobs: set[Job] = set()
        self._changed = threading.Condition()

    def add(self, job: Job) -> Job:
        with self._changed:
            self._jobs.add(job)
        return job

    def remove(self, job: Job) -> None:
        with self._changed:
            self._jobs.discard(job)
            self._changed.notify_all()

    def interrupt_all(self) -> list[Job]:
        """Flag and wake every job; return those whose group the caller now owns the right to kill."""
        with self._changed:
            jobs = list(self._jobs)
        for job in jobs:
            job.interrupt()
        return [job for job in jobs if job.claim_kill()]

    def empty(self) -> bool:
        with self._changed:
            return not self._jobs

    def wait_empty(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._jobs, timeout)


Signaller = Callable[[list[int], str], None]
"""Sends a signal ("TERM" or "KILL") to whole process groups on the executor's host."""


def stop_groups(jobs: list[Job], signal: Signaller, grace: float = KILL_GRACE) -> None:
    """Staged stop: SIGTERM the groups, give them `grace` seconds to finish, then SIGKILL what is left.

    SIGKILL goes out unconditionally: "the leader exited" does not mean its children did, and a group of
    zombies (orphans no init reaps) would make a "still there?" probe wait out the grace every time.
    """
    pgids = [job.pgid for job in jobs if job.pgid is not None]
    signal(pgids, "TERM")
    deadline = time.monotonic() + grace
    for job in jobs:
        job.done.wait(max(0.0, deadline - time.monotonic()))
    signal(pgids, "KILL")


def kill_jobs(jobs: JobTable, signal: Signaller) -> None:
    """`kill_all()` for either executor: flag every job, stop the ones with a known group in one batch,
    and wait (bounded) for their `run()` calls to return; jobs whose group is not known yet stop
    themselves as soon as it is (see `supervise`)."""
    claimed = jobs.interrupt_all()
    if claimed:
        stop_groups(claimed, signal)
    jobs.wait_empty(2 * KILL_GRACE + 1.0)


def stop_job(job: Job, signal: Signaller) -> None:
    """Stop one job's group in stages, unless `kill_all()` already claimed it (then wait for it to end)."""
    if job.claim_kill():
        stop_groups([job], signal)
    else:
        job.done.wait(KILL_GRACE + 1.0)


def supervise(job: Job, timeout: float | None, stop: Callable[[Job], None]) -> None:
    """Wait until the job is done, times out (→ `timed_out`) or is interrupted; `stop` it in the latter two."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not job.done.is_set():
        if job.interrupted:
            stop(job)
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            job.timed_out = True
            stop(job)
            return
        job.wake.wait(remaining)
        job.wake.clear()


class Sink(Protocol):
    """Where a reader thread puts bytes: a `StreamText`, or a filter in front of one."""

    def feed(self, data: bytes) -> None: ...

    def finish(self) -> None: ...


def start_reader(
    read: Callable[[int], bytes], sink: Sink, job: Job, then: Callable[[], object] | None, name: str
) -> threading.Thread:
    """Drain one stream to EOF on a daemon thread, then call `then` (collect the exit status).

    stdout and stderr each get their own reader: if only one were read, the other pipe (or SSH channel
    window) would fill up and the command would block forever.
    """

    def drain() -> None:
        try:
            while chunk := read(65536):
                sink.feed(chunk)
            sink.finish()
            if then is not None:
                then()
        finally:
            job.part_done()

    thread = threading.Thread(target=drain, name=name, daemon=True)
    thread.start()
    return thread
