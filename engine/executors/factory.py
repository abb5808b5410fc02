"""`executor_for(host)`: the one place that picks an executor class for a host, by its `Transport`.

A third way to reach hosts (say `kubectl exec`) is a `Transport` member, an `Executor` subclass in this
package, and one branch here; nothing outside the package names an executor class. A rehearsal's stage
replaces every way: each host, local or SSH, gets a `RehearsalExecutor` that runs and connects nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

from engine.executors.base import Executor
from engine.executors.local import LocalExecutor
from engine.transports import SSHOptions, SSHTarget, Transport

if TYPE_CHECKING:
    from engine.executors.rehearsal import Stage
    from engine.executors.ssh import SSHExecutor
    from engine.targets import Host


def executor_for(host: Host, options: SSHOptions | None = None, stage: Stage | None = None) -> Executor:
    """A new executor for `host`; an SSH one imports paramiko on first use and connects lazily; on a
    rehearsal's `stage`, the stand-in that answers from it."""
    if stage is not None:
        from engine.executors.rehearsal import RehearsalExecutor

        return RehearsalExecutor(host.name, stage)
    if host.transport is Transport.LOCAL:
        # A target moved here with `--target T=local` keeps its host names; commands can tell them apart.
        return LocalExecutor(host.name, {"RUNBOOK_HOST": host.name} if host.name != "local" else None)
    if host.transport is Transport.SSH:
        return ssh_executor(host.ssh_target(), options)
    raise AssertionError(f"no executor for transport {host.transport!r}")


def ssh_executor(target: SSHTarget, options: SSHOptions | None = None) -> SSHExecutor:
    """An `SSHExecutor` for `target` (resolved against ~/.ssh/config); imports paramiko on first call."""
    defer_invoke()
    from engine.executors.ssh import SSHExecutor

    return SSHExecutor(target, options)


def defer_invoke() -> None:
    """Before paramiko is first imported: make its `import invoke` cheap until invoke is really used.

    paramiko's config module imports invoke whenever it is installed, for the one `Match exec` of an ssh
    config, and invoke's import costs ~150 ms (unittest.mock, its vendored yaml); `runbook` itself never
    imports invoke. So a stand-in takes invoke's place in `sys.modules` and imports it for real on first
    use, which only a `Match exec` line makes. (importlib's LazyLoader cannot do this: the `import`
    statement itself reads the module's `__spec__`, which loads it.) Under `invoke run` it is loaded already.
    """
    if "invoke" in sys.modules or "paramiko" in sys.modules:
        return
    spec = importlib.util.find_spec("invoke")
    if spec is None:
        return  # not installed: paramiko copes (and says so on a `Match exec`)
    stand_in = _Deferred("invoke")
    stand_in.__spec__ = spec
    sys.modules["invoke"] = stand_in


class _Deferred(types.ModuleType):
    """Stands for a module until one of its attributes is used; then imports it and hands that out."""

    _lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with _Deferred._lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            module = importlib.import_module(self.__name__)
        return getattr(module, name)
