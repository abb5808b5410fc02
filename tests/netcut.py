"""A workstation whose network can be cut silently: a network namespace joined to this machine by a veth
pair (a private link, no route anywhere else), whose link is then taken down so that packets are dropped,
not refused: neither end hears a reset, as when a laptop's VPN or Wi-Fi vanishes.

A user-space proxy that stops forwarding cannot stand in for this: its kernel keeps acknowledging the
server's packets and keepalive probes, so the server would never notice the peer is gone.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Workstation:
    """The namespace `name`; this machine is `host_address` on the link, the workstation `address`."""

    name: str
    host_address: str
    address: str

    @property
    def host_link(self) -> str:
        return f"{self.name}h"

    def create(self) -> Workstation:
        self.delete()
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name", f"{self.name}w")
        _ip("link", "set", f"{self.name}w", "netns", self.name)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        _ip("-n", self.name, "addr", "add", f"{self.address}/30", "dev", f"{self.name}w")
        _ip("-n", self.name, "link", "set", f"{self.name}w", "up")
        _ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def argv(self, *argv: str) -> list[str]:
        """`argv` run inside the workstation's namespace (same files, same environment)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Drop every packet between the workstation and this machine, both ways, without a reset."""
        _ip("-n", self.name, "link", "set", f"{self.name}w", "down")
        _ip("link", "set", self.host_link, "down")

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)


def workstation() -> Workstation:
    """A namespace and a /30 of 10.213.0.0/16 of this test process's own."""
    subnet = os.getpid() % 16000
    base = f"10.213.{subnet // 64}.{(subnet % 64) * 4}"
    prefix, last = base.rsplit(".", 1)
    return Workstation(f"rbk{os.getpid() % 100000}", f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}")
