"""Where commands run: `LocalExecutor` here, `SSHExecutor` on remote hosts, both behind `Executor`.

The SSH side needs paramiko, which costs 0.2 s to import; `runbook validate` must not pay that, so this
package never imports `ssh` itself. Code that runs commands gets an SSH executor from `ssh_executor()`,
which imports it on first use; `SSHTarget` and `SSHOptions` are plain values and cost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.executors.base import Executor, OutputCallback, Result, SSHOptions, SSHTarget
from engine.executors.local import LocalExecutor

if TYPE_CHECKING:
    from engine.executors.ssh import SSHExecutor

__all__ = [
    "Executor",
    "LocalExecutor",
    "OutputCallback",
    "Result",
    "SSHOptions",
    "SSHTarget",
    "resolve_ssh_target",
    "ssh_executor",
]


def ssh_executor(target: SSHTarget, options: SSHOptions | None = None) -> SSHExecutor:
    """An `SSHExecutor` for `target` (resolved against ~/.ssh/config); imports paramiko on first call."""
    from engine.executors.ssh import SSHExecutor

    return SSHExecutor(target, options)


def resolve_ssh_target(target: SSHTarget, options: SSHOptions | None = None) -> SSHTarget:
    """`target` with ~/.ssh/config applied (HostName, User, Port, IdentityFile, ProxyJump)."""
    from engine.executors.ssh import resolve

    return resolve(target, options or SSHOptions())
