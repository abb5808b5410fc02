"""The team state on PostgreSQL, measured on this machine (issue 21): per-append latency, a small local
run's wall time on files and on PostgreSQL, and how long a lock outlives a vanished workstation.

    .venv/bin/python benchmarks/state_postgres.py append        # 300 sequential appends, 20 waves of 20
    .venv/bin/python benchmarks/state_postgres.py overhead 10   # files vs postgres, interleaved rounds
    .venv/bin/python benchmarks/state_postgres.py cut           # default keepalives: lock free after a cut

Each starts its own server (tests/pgserver.py) with fsync on, as a team's would run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from netcut import workstation  # noqa: E402
from pgserver import PgServer, cluster_directory, migrate_as_superuser  # noqa: E402

from engine.state.postgres.backend import PostgresState  # noqa: E402
from engine.state.postgres.schema import NAMESPACE  # noqa: E402

HELD = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {NAMESPACE}"


@contextmanager
def server(*addresses: str) -> Iterator[PgServer]:
    started = PgServer(cluster_directory() / "c", addresses=("127.0.0.1", *addresses)).init().start()
    try:
        started.sql("ALTER SYSTEM SET fsync = on")
        started.restart()
        started.create_roles()
        started.create_database("d")
        migrate_as_superuser(started, "d")
        yield started
    finally:
        started.stop("immediate")
        shutil.rmtree(started.directory.parent, ignore_errors=True)


def header(run_id: str) -> dict[str, object]:
    return {"type": "run", "run_id": run_id, "user": "u", "hostname": "h", "runbook": {}}


def append() -> None:
    with server() as db:
        state = PostgresState(db.url("alice", "d"), Path(tempfile.mkdtemp()))
        writer = state.start("book", header("R"), "")
        times = []
        for i in range(300):
            began = time.perf_counter()
            writer.append({"type": "step-start", "step": f"s{i}", "host": "local", "attempt": 1})
            times.append(time.perf_counter() - began)
        print(f"sequential append: median {statistics.median(times) * 1000:.2f} ms (n=300)")
        waves = []
        for wave in range(20):
            barrier = threading.Barrier(20)

            def one(host: int, wave: int = wave, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                writer.append({"type": "step-start", "step": f"w{wave}", "host": f"h{host}", "attempt": 1})

            threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            waves.append(time.perf_counter() - began)
        print(f"a wave of 20 concurrent appends: median {statistics.median(waves) * 1000:.2f} ms (n=20)")
        writer.close()
        state.close()


def overhead(rounds: int) -> None:
    work = Path(tempfile.mkdtemp())
    steps = "".join(f"  - id: s{i}\n    title: S{i}\n    run: echo {i}\n" for i in range(5))
    (work / "book.yml").write_text(f'runbook: 1\nname: small\nversion: "1"\ntitle: Small\nsteps:\n{steps}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    times: dict[str, list[float]] = {"files": [], "postgres": []}
    with server() as db:
        for _ in range(rounds):
            for kind, extra in (("files", {}), ("postgres", {"RUNBOOK_STATE": db.url("alice", "d")})):
                began = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "engine", "run", "book.yml", "--yes"],
                    cwd=work,
                    env={**env, **extra},
                    capture_output=True,
                    text=True,
                )
                times[kind].append(time.perf_counter() - began)
                assert done.returncode == 0, done.stdout + done.stderr
    files, shared = statistics.median(times["files"]), statistics.median(times["postgres"])
    print(
        f"5 local steps: files {files * 1000:.0f} ms, postgres {shared * 1000:.0f} ms ({shared / files:.2f}x)"
    )


def cut() -> None:
    station = workstation().create()
    try:
        with server(station.host_address) as db:
            url = db.url("alice", "d", host=station.host_address)
            code = (
                "import sys, pathlib; from engine.state.postgres.backend import PostgresState; "
                f"w = PostgresState({url!r}, pathlib.Path('/tmp')).start('book', {header('R')!r}, ''); "
                "print('held', flush=True); sys.stdin.readline()"
            )
            holder = subprocess.Popen(
                station.argv(sys.executable, "-c", code),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            station.cut()
            began = time.monotonic()
            while db.sql(HELD, "d") != "0" and time.monotonic() - began < 300:
                time.sleep(0.2)
            print(f"default keepalives: the lock was free {time.monotonic() - began:.1f} s after the cut")
            holder.kill()
    finally:
        station.delete()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "append"
    if what == "overhead":
        overhead(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    else:
        {"append": append, "cut": cut}[what]()
