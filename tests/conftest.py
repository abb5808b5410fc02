"""Shared fixtures. Keep each one small and documented; append new ones below the existing ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd import SSHDCluster, SSHDNode

from runbooks import Lab


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


@pytest.fixture
def lab(tmp_path: Path, home: Path) -> Lab:
    """An operator's workstation for CLI runs: they start in tmp_path/work, their journals in work/state
    (a test file that needs another lab defines its own `lab`)."""
    path = tmp_path / "work"
    path.mkdir()
    return Lab(path, home)
