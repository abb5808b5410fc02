"""Where commands run: `executor_for(host)` picks `LocalExecutor` here or `SSHExecutor` on remote hosts.

Both are the one template in `base.Executor` over their own primitives. The SSH side needs paramiko, which
costs 0.2 s to import; `runbook validate` must not pay that, so this package never imports `ssh` itself:
the factory imports it on first use. The values that say how a host is reached (`Transport`, `SSHTarget`,
`SSHOptions`…) live in `engine.transports`, so the plan side never imports this package.
"""

from __future__ import annotations

from engine.executors.base import Executor, OutputCallback, Result
from engine.executors.factory import executor_for, ssh_executor
from engine.executors.local import LocalExecutor
from engine.transports import SSHOptions, SSHTarget

__all__ = [
    "Executor",
    "LocalExecutor",
    "OutputCallback",
    "Result",
    "executor_for",
    "resolve_ssh_target",
    "ssh_executor",
]


def resolve_ssh_target(target: SSHTarget, options: SSHOptions | None = None) -> SSHTarget:
    """`target` with ~/.ssh/config applied (HostName, User, Port, IdentityFile, ProxyJump)."""
    from engine.executors.factory import defer_invoke

    defer_invoke()
    from engine.executors.ssh import resolve

    return resolve(target, options or SSHOptions())
