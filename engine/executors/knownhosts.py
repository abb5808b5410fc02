"""Host keys: known_hosts read once per process, an unknown key refused or (when trusted) appended."""

from __future__ import annotations

import os
import threading

import paramiko

from engine.errors import HostKeyError
from engine.transports import SSHTarget


class KnownHosts:
    """known_hosts files, each parsed once per process and again only when it changes (as when a key is
    trusted): `SSHClient.load_host_keys` would parse the whole file, decoding every key, for each
    connection — 250 hosts, 250 × 250 keys, one thread at a time. Appends (several hosts may be trusted at
    once by the parallel preflight) take a lock of their own."""

    def __init__(self) -> None:
        self._read_lock = threading.Lock()
        self._read: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}
        self._append_lock = threading.Lock()

    def keys(self, path: str, name: str) -> dict[str, paramiko.PKey]:
        """The keys `path` has for `name` (`[host]:port` off port 22), by key type."""
        with self._read_lock:
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                return {}
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._read.get(path)
            if cached is None or cached[0] != stamp:
                keys = paramiko.HostKeys()
                keys.load(path)
                cached = self._read[path] = (stamp, keys)
        found = cached[1].lookup(name)
        return dict(found) if found else {}

    def append(self, path: str, line: str) -> None:
        with self._append_lock:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as file:
                if file.tell() > 0 and not _ends_with_newline(path):
                    file.write("\n")
                file.write(line)


KNOWN_HOSTS = KnownHosts()


class UnknownHostKey(paramiko.MissingHostKeyPolicy):
    """Unknown key: refuse with its fingerprint, or (trust_new_keys) accept it and append it to known_hosts."""

    def __init__(self, name: str, known_hosts: str, trust: bool) -> None:
        self._name, self._known_hosts, self._trust = name, known_hosts, trust

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self._trust:
            raise HostKeyError(
                f"{self._name}: unknown host key for {hostname}: {key.get_name()} {key.fingerprint}; "
                f"check it, then rerun with --trust-new-host-keys to accept it and add it to {self._known_hosts}"
            )
        KNOWN_HOSTS.append(self._known_hosts, f"{hostname} {key.get_name()} {key.get_base64()}\n")


def known_hosts_name(target: SSHTarget) -> str:
    """The host's name in known_hosts: its address, `[address]:port` off port 22."""
    host = target.hostname or target.name
    return host if target.port in (None, 22) else f"[{host}]:{target.port}"


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"
