"""`runbook plan FILE`: the dry run. Every command, rendered, per host; nothing is executed.

The text is meant to be read by a reviewer, so it is plain, stable and copy-pasteable: commands are
printed exactly as they will run.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine import reviewing, stepview
from engine.flags import option
from engine.options import Options, prepare
from engine.planning import HostPlan, Plan, PlannedStep
from engine.transports import SSHOptions, Transport


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    save: str | None = option(
        None, help="Also write the rendered plan as JSON, with its sha256, to this file.", metavar="FILE"
    )
    format: Format = option(Format.TEXT, help="text (default) or json (the document --save writes).")


def main(options: Options, chosen: PlanOptions) -> int:
    """`format` json prints the document `--save` writes (a script reads one, or the other, alike)."""
    save, format = chosen.save, chosen.format
    _validated, plan = prepare(options)
    if format == Format.JSON:
        print(reviewing.to_json(plan), end="")
    else:
        print(describe(plan))
    if save:
        digest = reviewing.save(plan, Path(save))
        note = f"plan saved to {save} (sha256 {digest})"
        if format == Format.JSON:
            print(note, file=sys.stderr)  # standard output holds the JSON document alone
        else:
            print(f"\n{note}")
    return 0


def describe(plan: Plan) -> str:
    rb = plan.runbook
    lines = [
        f"{rb.title}",
        f"runbook {rb.name} {rb.version}  ({rb.document.path}, sha256 {rb.document.sha256[:16]}…)",
        f"platform: {plan.platform or 'any (every variant shown)'}",
    ]
    if plan.values.values or plan.values.missing:
        lines.append("values:")
        masked = plan.values.masked()
        lines += [
            f"  {name} = {json.dumps(masked[name], ensure_ascii=False)}  ({plan.values.sources.get(name, '')})"
            for name in masked
        ]
        lines += [f"  {name} = ________  (not given)" for name in plan.values.missing]
    for used in plan.uses:
        lines.append(f"uses: {used.step} → {used.path} (sha256 {used.sha256[:16]}…)")
    for warning in plan.warnings:
        lines.append(f"WARNING: {warning}")
    lines += _reach(plan)
    if plan.checks:
        lines.append("\npreflight checks:")
        for check in plan.checks:
            before = ", only before the first step" if check.only_before_start else ""
            lines.append(f"  - {check.title}  [on {check.target}{before}]")
            lines += _hosts(check.hosts, indent=6)
    lines.append("\nsteps:")
    for previous, planned in zip((None, *plan.steps), plan.steps):
        heading = stepview.group_heading(planned, previous)
        lines += [f"\n{planned.number:>3}. {heading}"] if heading else []
        lines += _step(plan, planned)
    return "\n".join(lines)


def _reach(plan: Plan) -> list[str]:
    """Per SSH target, how each host will be reached: user, address, port, key or agent, jump hosts; and,
    when ~/.ssh/config exists, where it sends each name (its HostName, User, Port, IdentityFile, ProxyJump)."""
    config = _ssh_config_resolution(plan)
    lines = []
    for target in plan.targets.values():
        remote = [h for h in target.hosts if h.transport is not Transport.LOCAL]
        if remote:
            lines.append(f"\nhosts of {target.name}:")
            for host in remote:
                lines.append(f"  {host.name}: {host.reach}")
                if host.name in config:
                    lines.append(f"    with ~/.ssh/config: {config[host.name]}")
    return lines


def _ssh_config_resolution(plan: Plan) -> dict[str, str]:
    """Each SSH host's resolution in words, when there is a ~/.ssh/config to apply (reading it costs
    paramiko's import, which a plan without one does not pay)."""
    if not plan.remote_hosts() or not os.path.isfile(os.path.expanduser(SSHOptions().ssh_config)):
        return {}
    from engine.executors import resolution

    found = reviewing.resolution_of(plan)
    return {name: resolution.describe(resolved) for name, resolved in found.items()}


def _step(plan: Plan, planned: PlannedStep) -> list[str]:
    """The step's facts (`stepview`, as the checklist words them), then its blocks: confirm, manual, hosts."""
    step = planned.step
    facts = ", ".join(fact.text for fact in stepview.facts(plan, planned))
    lines = [f"\n{planned.label:>3}. {planned.id}: {planned.title}  [{facts}]"]
    if step.confirm:
        typed = f" (type {planned.confirm_text!r})" if planned.confirm_text else ""
        lines.append(f"       confirm: {planned.confirm_question}{typed}")
    if planned.manual:
        lines += [f"       @ operator: skipped — {planned.skip}"] if planned.skip else []
        lines += textwrap.indent(f"MANUAL: {planned.manual.strip()}", " " * 7).splitlines()
        if step.record:
            expect = planned.record_expect or step.record.matches or "(anything)"
            lines.append(f"       record: {planned.record_prompt} — expected {expect}")
    lines += _hosts(planned.shown_hosts, indent=7)
    per_host = [f"       result on {host}: {text}" for host, text in planned.results()]
    lines += per_host or ([f"       result: {planned.result}"] if planned.result else [])
    return lines


def _hosts(hosts: tuple[HostPlan, ...], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for hp in hosts:
        where = f"{pad}@ {hp.host.display}" + (f"  (cwd {hp.cwd})" if hp.cwd else "")
        if hp.skip:
            lines.append(f"{where}: skipped — {hp.skip}")
            continue
        lines.append(where + (" (rendered again at run time)" if hp.deferred else ""))
        if hp.shown_env():
            lines.append(f"{pad}  env: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in hp.shown_env()))
        for variant in hp.variants:
            label = f"[{variant.label}] " if variant.label else ""
            script = variant.script.rstrip("\n").splitlines() or [""]
            lines.append(f"{pad}  {label}$ {script[0]}")
            lines += [f"{pad}  {' ' * len(label)}  {more}" for more in script[1:]]
    return lines
