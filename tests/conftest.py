"""Shared fixtures. Keep each one small and documented; append new ones below the existing ones."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgserver import PG_TEMPLATE, PgDatabase, PgServer, cluster_directory, migrate_as_superuser
from sshd import SSHDCluster, SSHDNode

from runbooks import Lab

_PG_NUMBERS = itertools.count(1)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty $HOME, so nothing reads or writes the real ~/.ssh (or any other dotfile),
    and no SSH agent of the developer's is used."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return path


@pytest.fixture(scope="session")
def sshd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHDCluster]:
    """Real sshd processes, started on first use and shared by the whole session (each costs ~50 ms).

    No sshd is a failure, not a skip: CI installs openssh-server, and a skipped SSH suite would hide it.
    """
    try:
        cluster = SSHDCluster(tmp_path_factory.mktemp("sshd"))
    except RuntimeError as error:
        pytest.fail(str(error))
    yield cluster
    cluster.stop()


@pytest.fixture
def sshd_nodes(sshd_cluster: SSHDCluster) -> Callable[[int], list[SSHDNode]]:
    """`sshd_nodes(3)` → three running nodes, cleaned of what earlier tests left (stand-ins, calls, files)."""

    def nodes(count: int = 1) -> list[SSHDNode]:
        started = sshd_cluster.start(count)
        for node in started:
            node.reset()
        return started

    return nodes


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the whole session (initdb ~1 s), with the team's roles: `alice` and `bob`
    in `runbook_operators`, `mallory` outside it; and the database `runbook_template`, migrated.

    No server is a failure, not a skip: `.ci/setup` installs it.
    """
    try:
        server = PgServer(cluster_directory() / "cluster").init().start()
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        server.create_roles()
        server.create_database(PG_TEMPLATE)
        migrate_as_superuser(server, PG_TEMPLATE)
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.directory.parent, ignore_errors=True)


@pytest.fixture
def pg_db(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[PgDatabase]:
    """A database of this test's own, copied from the migrated template (milliseconds), dropped after."""
    name = f"t{next(_PG_NUMBERS)}_{os.getpid()}"
    pg_server.create_database(name, template=PG_TEMPLATE)
    yield PgDatabase(pg_server, name)
    pg_server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    """An operator's workstation for CLI runs: they start in tmp_path/work, their journals in work/state
    (a test file that needs another lab defines its own `lab`)."""
    path = tmp_path / "work"
    path.mkdir()
    return Lab(path, home)
