"""The Ansible inventory of a plan: every target's hosts as they were resolved now, one group per SSH target.

Hosts are expanded when the export is made (an inventory `from_file` is read then, `--hosts` applies), so
the inventory lists exactly the hosts `plan` shows. A host keeps what the runbook or the inventory file says
about it (user, port, key file); what it does not say is left to `~/.ssh/config`, as `ssh` itself does.
Every host var from the runbook or an inventory file is data (`!unsafe`), never templated by Ansible; a
host's inventory name is made of safe characters only, since the playbook's conditions name hosts.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.export.yamltext import data
from engine.planning import Plan
from engine.targets import LOCAL_HOST, Host
from engine.transports import Agent, Transport

LOCALHOST = "localhost"
ON_LOCALHOST = f"inventory_hostname == '{LOCALHOST}'"
_LOCAL_VARS = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


@dataclass(frozen=True)
class Inventory:
    """The inventory as data, with the names the playbook uses for hosts and targets."""

    data: dict[str, Any]
    aliases: Mapping[Host, str]  # each host → its inventory name
    groups: Mapping[str, str]  # each target → the `hosts:` pattern of its plays

    def condition(self, target: str, hosts: Sequence[Host] = ()) -> str:
        """The `when` that selects the target's hosts in a play on every host (or only `hosts`: a batch)."""
        if hosts:
            return f"inventory_hostname in {[self.aliases[host] for host in hosts]!r}"
        group = self.groups[target]
        return ON_LOCALHOST if group == LOCALHOST else f"inventory_hostname in groups['{group}']"


def build(plan: Plan) -> Inventory:
    aliases: dict[Host, str] = {LOCAL_HOST: LOCALHOST}
    hosts: dict[str, dict[str, Any]] = {LOCALHOST: dict(_LOCAL_VARS)}
    children: dict[str, Any] = {}
    groups: dict[str, str] = {}
    for name, target in plan.targets.items():
        if target.hosts == (LOCAL_HOST,):
            groups[name] = LOCALHOST
            continue
        members: dict[str, None] = {}
        for host in target.hosts:
            alias = aliases.get(host) or _alias(host, hosts)
            aliases[host] = alias
            hosts[alias] = _host_vars(host)
            members[alias] = None
        group = _group_name(name, set(children) | set(hosts))
        children[group] = {"hosts": members}
        groups[name] = group
    groups.setdefault("local", LOCALHOST)
    top_hosts = {alias: hosts[alias] for alias in hosts}
    return Inventory({"all": {"hosts": top_hosts, "children": children}}, aliases, groups)


def _alias(host: Host, taken: Mapping[str, Any]) -> str:
    """The host's own name (any character a host name has no use for made `_`), unless another host
    (another user or port) has it: then `name_2`, `name_3`…"""
    base = re.sub(r"[^A-Za-z0-9_.:@-]", "_", host.name)
    alias, number = base, 1
    while alias in taken:
        number += 1
        alias = f"{base}_{number}"
    return alias


def _group_name(target: str, taken: set[str]) -> str:
    """Ansible group names are identifiers: `web-tier` → `web_tier` (a clash gets a number)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", target)
    group, number = base, 1
    while group in taken:
        number += 1
        group = f"{base}_{number}"
    return group


def jump_refusal(hop: Host, hops: int) -> str | None:
    """Why a jump hop cannot be written as ssh options, or None: inline keys and certificates are never
    written, and only a single hop can have a key of its own (a ProxyCommand; several would nest)."""
    if hop.key is not None or hop.cert is not None:
        return "an inline key or certificate is never written to the export; give the hop a key_file"
    if hop.agent not in (None, Agent.NO) or hop.jump:
        return "the hop's agent setting or own jump hosts have no ssh option the export writes"
    if hops > 1 and _own_identity(hop):
        return "several jump hosts with keys of their own would need nested ProxyCommands"
    return None


def _own_identity(hop: Host) -> bool:
    return hop.key_file is not None or hop.cert_file is not None or hop.agent is Agent.NO


def jump_option(hops: tuple[Host, ...]) -> str:
    """`-o ProxyJump=a,b` (OpenSSH's -J), or a ProxyCommand for one hop with a key of its own."""
    if len(hops) == 1 and _own_identity(hops[0]):
        hop = hops[0]
        words = ["ssh", "-W", "%h:%p"]
        words += ["-p", str(hop.port)] if hop.port else []
        words += ["-i", hop.key_file] if hop.key_file else []
        words += ["-o", f"CertificateFile={hop.cert_file}"] if hop.cert_file else []
        words += ["-o", "IdentitiesOnly=yes"] if hop.agent is Agent.NO or hop.key_file else []
        words.append(f"{hop.user}@{hop.address}" if hop.user else hop.address)
        return f"-o ProxyCommand={shlex.quote(shlex.join(words))}"
    return "-o ProxyJump=" + ",".join(_hop_text(hop) for hop in hops)


def _hop_text(hop: Host) -> str:
    user = f"{hop.user}@" if hop.user else ""
    return f"{user}{hop.address}" + (f":{hop.port}" if hop.port else "")


def _host_vars(host: Host) -> dict[str, Any]:
    if (
        host.transport is Transport.LOCAL
    ):  # `--target NAME=local`: the target's hosts run on this machine, each named
        return {**_LOCAL_VARS, "runbook_host": data(host.name)}
    found: dict[str, Any] = {"ansible_host": host.address}
    if host.port is not None:
        found["ansible_port"] = host.port
    if host.user is not None:
        found["ansible_user"] = host.user
    if host.key_file is not None:
        found["ansible_ssh_private_key_file"] = host.key_file
    args = ["-o IdentitiesOnly=yes"] if host.agent is Agent.NO else []  # only the given key, not the agent's
    args += [jump_option(host.jump)] if host.jump else []
    if args:
        found["ansible_ssh_common_args"] = " ".join(args)
    return {**data(found), "ansible_python_interpreter": "auto_silent"}
