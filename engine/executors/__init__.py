"""Where commands run: `executor_for(host)` picks `LocalExecutor` here or `SSHExecutor` on remote hosts.

Both are the one template in `base.Executor` over their own primitives. The SSH side needs paramiko, which
costs 0.2 s to import; `runbook validate` must not pay that, so this package never imports `ssh` itself:
the factory imports it on first use; `SSHTarget` and `SSHOptions` are plain values and cost nothing.
"""

from __future__ import annotations

from engine.executors.base import Agent, Executor, OutputCallback, Result, SSHOptions, SSHTarget, Transport
from engine.executors.factory import executor_for, ssh_executor, ssh_target
from engine.executors.local import LocalExecutor

__all__ = [
    "Agent",
    "Executor",
    "LocalExecutor",
    "OutputCallback",
    "Result",
    "SSHOptions",
    "SSHTarget",
    "Transport",
    "executor_for",
    "resolve_ssh_target",
    "ssh_executor",
    "ssh_target",
]


def resolve_ssh_target(target: SSHTarget, options: SSHOptions | None = None) -> SSHTarget:
    """`target` with ~/.ssh/config applied (HostName, User, Port, IdentityFile, ProxyJump)."""
    from engine.executors.factory import defer_invoke

    defer_invoke()
    from engine.executors.ssh import resolve

    return resolve(target, options or SSHOptions())
