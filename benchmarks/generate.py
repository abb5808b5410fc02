"""A large synthetic runbook (and its inventory) for the planning benchmark."""

from __future__ import annotations

from pathlib import Path


def write_large_runbook(directory: Path, steps: int = 1000, hosts: int = 50, per_host_every: int = 1) -> Path:
    """`steps` steps, alternating between this machine and an inventory of `hosts` SSH nodes.

    One node step in `per_host_every` names `host.name` in its command, which makes it render once per
    host (1: every one, the worst case); the others render once and are shared by all hosts.
    """
    inventory = directory / "inventory.yml"
    inventory.write_text(
        "nodes:\n"
        + "".join(
            f"  - {{address: 127.0.{i // 250}.{i % 250 + 2}, user: ops, port: 22}}\n" for i in range(hosts)
        )
    )
    lines = [
        "runbook: 1",
        "name: large",
        'version: "1.0"',
        "title: Large generated runbook",
        "variables:",
        "  release: {type: string, pattern: '^v[0-9.]+$', default: v1.2.3}",
        "  inventory: {type: string, default: " + str(inventory) + "}",
        "targets:",
        "  nodes:",
        "    ssh:",
        "      from_file: '{{ inventory }}'",
        "      each: nodes",
        "      host: '{{ item.address }}'",
        "      user: '{{ item.user }}'",
        "      port: '{{ item.port }}'",
        "steps:",
    ]
    for i in range(steps):
        on = "nodes" if i % 2 else "local"
        where = " on {{ host.name }}" if (i // 2) % per_host_every == 0 else ""
        lines += [
            f"  - id: step-{i}",
            f"    title: Step {i}",
            f"    on: {on}",
            f"    run: echo step {i} release {{{{ release }}}}{where} && systemctl status app-{i}",
        ]
    path = directory / "large.yml"
    path.write_text("\n".join(lines) + "\n")
    return path
