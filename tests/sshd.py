"""Real OpenSSH sshd nodes for tests and benchmarks: `/usr/sbin/sshd -D` on 127.0.0.2, 127.0.0.3, ...

Each node has its own loopback address and free port, ed25519 host key, HOME (so root's .bashrc, which
runs pyenv init for ~125 ms, is never read) and bin dir at the front of PATH, where a test drops
recording stand-ins for `docker`, `kubectl`, ... All nodes accept one generated client key and are listed
in one generated known_hosts file as `[127.0.0.x]:port`.

Standalone (no pytest, no engine imports) so `benchmarks/` can start nodes too.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 10.0
START_ATTEMPTS = 3  # a port found free can be taken before sshd binds it; then try another

_CONFIG = """\
ListenAddress {listen}
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
MaxStartups 200
MaxSessions 10
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel {log_level}
SetEnv HOME={home} PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin RUNBOOK_TEST_NODE={address}
{extra}"""

_STAND_IN = """\
#!{python} -S
import json, os, sys, time
call = {{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "node": os.environ.get("RUNBOOK_TEST_NODE"), "time": time.time(), "pid": os.getpid()}}
with open({log!r}, "a") as log:
    log.write(json.dumps(call) + "\\n")
sys.stdout.write({stdout!r})
sys.exit({exit_code})
"""


def generate_key(path: Path) -> str:
    """Write an unencrypted ed25519 private key (0600) and `path.pub`; return the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.write_bytes(private)
    path.chmod(0o600)
    path.with_name(path.name + ".pub").write_bytes(public + b"\n")
    return public.decode()


@dataclass
class SSHDNode:
    """One running sshd; `user` is whoever runs the tests (they log in as themselves)."""

    address: str
    port: int
    root: Path
    home: Path
    bin_dir: Path
    host_key: Path
    host_public_key: str
    client_key: Path
    known_hosts: Path
    log: Path
    user: str
    process: subprocess.Popen[bytes]

    @property
    def known_hosts_name(self) -> str:
        return f"[{self.address}]:{self.port}"

    @property
    def calls_log(self) -> Path:
        return self.home / "calls.jsonl"

    def stand_in(self, name: str, exit_code: int = 0, stdout: str = "") -> Path:
        """An executable `name` in the node's bin dir that records each call (argv, node, time, pid)."""
        path = self.bin_dir / name
        text = _STAND_IN.format(
            python=sys.executable, log=str(self.calls_log), stdout=stdout, exit_code=exit_code
        )
        path.write_text(text)
        path.chmod(0o755)
        return path

    def calls(self, name: str | None = None) -> list[dict[str, object]]:
        """The recorded stand-in calls, oldest first; only those of `name` if given."""
        if not self.calls_log.exists():
            return []
        calls = [json.loads(line) for line in self.calls_log.read_text().splitlines() if line]
        return [call for call in calls if name is None or call["argv"][0] == name]

    def accepted_connections(self) -> int:
        """How many SSH logins this sshd has accepted since it started (from its -E log)."""
        return self.log.read_text().count("Accepted publickey")

    def reset(self) -> None:
        """Forget what earlier tests did: stand-ins, their calls, files left in HOME."""
        for path in [*self.bin_dir.iterdir(), *self.home.iterdir()]:
            if path.is_dir() and not path.is_symlink():
                _remove_tree(path)
            else:
                path.unlink()

    def stop(self) -> None:
        """Terminate, then kill: sshd must not outlive the test session."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(3)


def _remove_tree(path: Path) -> None:
    """`rmtree`, again while the wrapper of a command an earlier test killed writes its exit status there
    (`~/.runbook/out`, a moment after its group died); bounded."""
    for _ in range(50):
        try:
            shutil.rmtree(path)
        except OSError:
            time.sleep(0.02)
        if not path.exists():
            return
    shutil.rmtree(path)


NODES_PER_BLOCK = 250
"""Numbered nodes per /24 of loopback: node i on 127.0.0.{i+2} up to 249, then 127.0.1.2, … (Linux answers
on all of 127/8), so a benchmark can start 500 nodes."""


def node_address(index: int) -> str:
    block, offset = divmod(index, NODES_PER_BLOCK)
    return f"127.0.{block}.{offset + 2}"


class SSHDCluster:
    """Starts nodes on demand (node i on `node_address(i)`) and stops them all in `stop()`."""

    def __init__(self, base: Path) -> None:
        if not os.access(SSHD, os.X_OK):
            raise RuntimeError(f"{SSHD} is missing: install openssh-server (CI does)")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir, as root
        self.base = base
        self.client_key = base / "client_ed25519"
        self.authorized_keys = base / "authorized_keys"
        self.known_hosts = base / "known_hosts"
        self.authorized_keys.write_text(generate_key(self.client_key) + "\n")
        self.known_hosts.write_text("")
        self.nodes: list[SSHDNode] = []
        self.extras: dict[str, SSHDNode] = {}
        self._extra_settings: dict[str, tuple[Path, str, str]] = {}

    def start(self, count: int) -> list[SSHDNode]:
        """The first `count` nodes, starting those not running yet."""
        while len(self.nodes) < count:
            self.nodes.append(self._start_node(node_address(len(self.nodes))))
        return self.nodes[:count]

    def extra(
        self, address: str, authorized_keys: Path, log_level: str = "INFO", extra_config: str = ""
    ) -> SSHDNode:
        """A node apart from the numbered ones (a bastion, say), started once: its own address, its own
        authorized_keys file, `log_level` (DEBUG1 logs each forwarding: `server_request_direct_tcpip`) and
        `extra_config` lines for its sshd_config (e.g. TrustedUserCAKeys)."""
        wanted = (authorized_keys, log_level, extra_config)
        if address in self.extras and self._extra_settings[address] != wanted:
            raise RuntimeError(f"extra sshd {address} already runs with other settings: pick another address")
        if address not in self.extras:
            self.extras[address] = self._start_node(address, authorized_keys, log_level, extra_config)
            self._extra_settings[address] = wanted
        return self.extras[address]

    def stop(self) -> None:
        for node in [*self.nodes, *self.extras.values()]:
            node.stop()
        self.nodes = []
        self.extras = {}
        self._extra_settings = {}

    def _start_node(
        self,
        address: str,
        authorized_keys: Path | None = None,
        log_level: str = "INFO",
        extra_config: str = "",
    ) -> SSHDNode:
        root = self.base / f"node-{address}"
        home, bin_dir = root / "home", root / "bin"
        for directory in (home, bin_dir):
            directory.mkdir(parents=True, exist_ok=True)
        host_key = root / "ssh_host_ed25519_key"
        public = generate_key(host_key)
        for _attempt in range(START_ATTEMPTS):
            port = free_port(address)
            config = root / "sshd_config"
            config.write_text(
                _CONFIG.format(
                    listen=f"[{address}]:{port}" if ":" in address else f"{address}:{port}",  # IPv6: [::1]:22
                    address=address,
                    port=port,
                    host_key=host_key,
                    root=root,
                    home=home,
                    bin_dir=bin_dir,
                    authorized_keys=authorized_keys or self.authorized_keys,
                    log_level=log_level,
                    extra=extra_config,
                )
            )
            log = root / "sshd.log"
            with open(root / "sshd.stderr", "wb") as stderr:
                process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config), "-E", str(log)], stderr=stderr
                )
            if _wait_listening(process, address, port):
                break
            process.kill()
            process.wait()
        else:
            detail = (root / "sshd.stderr").read_text() + (log.read_text() if log.exists() else "")
            raise RuntimeError(f"sshd on {address} did not start after {START_ATTEMPTS} tries:\n{detail}")
        with open(self.known_hosts, "a") as known_hosts:
            known_hosts.write(f"[{address}]:{port} {public}\n")
        return SSHDNode(
            address,
            port,
            root,
            home,
            bin_dir,
            host_key,
            public,
            self.client_key,
            self.known_hosts,
            log,
            getpass.getuser(),
            process,
        )


def free_port(address: str) -> int:
    """A port nothing listens on at `address` right now (the kernel's pick for a bind to port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], address: str, port: int) -> bool:
    """Poll the port until sshd accepts (True) or exits / START_TIMEOUT passes (False)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False
