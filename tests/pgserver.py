"""A real PostgreSQL server for the tests: initdb in a temporary directory as the `postgres` OS user,
listening on 127.0.0.1 at a free port (and on a Unix socket in its own directory), stopped at the end.

The server binaries are the distribution's (`/usr/lib/postgresql/<version>/bin`, installed by `.ci/setup`);
they refuse to run as root, hence `runuser -u postgres`. Each test gets its own database, copied from a
template that already holds the schema (`CREATE DATABASE … TEMPLATE` copies files: milliseconds).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD = "secret-pw"  # every test login's password (trust auth ignores it; conninfo stays realistic)
OPERATORS = ("alice", "bob")  # login roles in the group `runbook_operators`
OUTSIDER = "mallory"  # a login role that is not an operator
GROUP = "runbook_operators"
PG_TEMPLATE = "runbook_template"  # migrated once per session; each test's database is a copy


def bin_dir() -> Path:
    """The newest installed server's binaries; a RuntimeError (a failure, never a skip) when there is none."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server installed (/usr/lib/postgresql/*/bin): run .ci/setup")
    return found[-1].parent


def cluster_directory() -> Path:
    """A fresh directory the `postgres` user can reach (pytest's temporary directories are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _as_postgres(*argv: str | os.PathLike[str], timeout: float = 60.0) -> str:
    done = subprocess.run(
        ["runuser", "-u", SUPERUSER, "--", *(str(a) for a in argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(str(a) for a in argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        )
    return done.stdout


@dataclass
class PgServer:
    """One cluster: `start()`, `stop()`, `restart()`, and SQL as the superuser (`sql`)."""

    directory: Path
    addresses: Sequence[str] = ("127.0.0.1",)
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    def init(self) -> PgServer:
        """initdb; `directory`'s parents must let the postgres user through (see `cluster_directory`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        shutil.chown(self.directory, SUPERUSER, SUPERUSER)
        shutil.chown(self.socket_dir, SUPERUSER, SUPERUSER)
        os.chmod(self.directory, 0o755)
        _as_postgres(bin_dir() / "initdb", "-D", self.data, "-A", "trust", "-U", SUPERUSER, "--no-sync")
        if set(self.addresses) - {"127.0.0.1"}:  # a workstation on a private link (tests/netcut.py)
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all samenet trust\n")
        return self

    def start(self) -> PgServer:
        options = (
            f"-c listen_addresses={','.join(self.addresses)} -c port={self.port} "
            f"-c unix_socket_directories={self.socket_dir} -c fsync=off -c max_connections=200"
        )
        log = self.directory / "server.log"
        _as_postgres(bin_dir() / "pg_ctl", "start", "-w", "-D", self.data, "-l", log, "-o", options)
        return self

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(bin_dir() / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data)

    def restart(self) -> None:
        """Stop (terminating every session, as a crash-restart or a failover would) and start again."""
        self.stop()
        self.start()

    def url(
        self,
        user: str = SUPERUSER,
        database: str = "postgres",
        host: str = "127.0.0.1",
        password: bool = True,
        **extra: str,
    ) -> str:
        """A libpq URI reaching this server as `user` (with a password, as a RUNBOOK_STATE in the
        environment may have; without one for `--state`, which refuses it)."""
        query = "&".join(f"{k}={v}" for k, v in extra.items())
        login = f"{user}:{PASSWORD}" if password else user
        return f"postgresql://{login}@{host}:{self.port}/{database}" + (f"?{query}" if query else "")

    def sql(self, statement: str, database: str = "postgres", user: str = SUPERUSER) -> str:
        """Run `statement` with psql (unaligned, tuples only) and return its output, stripped."""
        done = subprocess.run(
            [
                bin_dir() / "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
                self.url(user, database),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode:
            raise RuntimeError(f"psql: {statement}: {done.stderr}")
        return done.stdout.strip()

    def dump(self, database: str) -> str:
        """`pg_dump` of a database, plain SQL (data included)."""
        done = subprocess.run(
            [bin_dir() / "pg_dump", "--no-owner", self.url(SUPERUSER, database)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode:
            raise RuntimeError(f"pg_dump: {done.stderr}")
        return done.stdout

    def create_roles(self) -> None:
        """The team: the group role, two operators in it and one login outside it."""
        self.sql(f"CREATE ROLE {GROUP} NOLOGIN")
        for name in (*OPERATORS, OUTSIDER):
            self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        for name in OPERATORS:
            self.sql(f"GRANT {GROUP} TO {name}")

    def create_database(self, name: str, template: str = "template0") -> None:
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def terminate(self, where: str, database: str) -> int:
        """`pg_terminate_backend` of the sessions of `database` matching the SQL condition `where`; how many."""
        found = self.sql(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid() AND ({where})"
        )
        return int(found or 0)


@dataclass(frozen=True)
class PgDatabase:
    """One test's database on the session's server."""

    server: PgServer
    name: str

    def url(self, user: str = OPERATORS[0], **extra: str) -> str:
        return self.server.url(user, self.name, **extra)

    def sql(self, statement: str, user: str = SUPERUSER) -> str:
        return self.server.sql(statement, self.name, user)


def migrate_as_superuser(server: PgServer, database: str) -> None:
    """`runbook state migrate` against `database`, in process (the template every test copies)."""
    import psycopg

    from engine.state.postgres.schema import migrate

    with psycopg.connect(server.url(SUPERUSER, database), autocommit=True) as connection:
        migrate(connection)


@dataclass
class PgBouncer:
    """The distribution's pgbouncer in front of `server`, pooling in `mode` (transaction by default)."""

    directory: Path
    server: PgServer
    mode: str = "transaction"
    port: int = field(default_factory=free_port)

    def start(self) -> PgBouncer:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "users.txt").write_text(
            "".join(f'"{u}" "{PASSWORD}"\n' for u in (*OPERATORS, OUTSIDER))
        )
        (self.directory / "pgbouncer.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.server.port}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory}/users.txt\npool_mode = {self.mode}\n"
            f"logfile = {self.directory}/pgbouncer.log\npidfile = {self.directory}/pgbouncer.pid\n"
        )
        shutil.chown(self.directory, SUPERUSER, SUPERUSER)
        _as_postgres("/usr/sbin/pgbouncer", "-d", self.directory / "pgbouncer.ini")
        deadline = time.monotonic() + 15  # -d returns before the daemon wrote its pid and listens
        while not (self.directory / "pgbouncer.pid").exists() or not _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start: {self.directory / 'pgbouncer.log'}")
            time.sleep(0.02)
        return self

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pid = (self.directory / "pgbouncer.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False, timeout=30)


def standby_of(primary: PgServer) -> PgServer:
    """A streaming standby of `primary` (pg_basebackup -R), started: a server in recovery."""
    standby = PgServer(cluster_directory() / "standby")
    standby.directory.mkdir(parents=True)
    standby.socket_dir.mkdir()
    for path in (standby.directory, standby.socket_dir):
        shutil.chown(path, SUPERUSER, SUPERUSER)
    argv = ["-D", standby.data, "-R", "-X", "stream", "--checkpoint=fast", "-d", primary.url(password=False)]
    try:
        _as_postgres(bin_dir() / "pg_basebackup", *argv)
        return standby.start()
    except BaseException:
        shutil.rmtree(standby.directory.parent, ignore_errors=True)
        raise
