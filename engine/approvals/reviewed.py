"""The approved document against a reviewed plan (`plan --save`): what an approver should look at twice.

The same facts of the step are taken from both (per host the commands, cwd, env names; the timeout) and
shown as a unified diff; none when the run runs what was reviewed.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from engine import reviewing
from engine.approvals.desk import Request


def difference(request: Request, plan_file: Path) -> str:
    saved = reviewing.load(plan_file)
    approved = json.loads(request.document)
    step = next(
        (s for s in saved.get("steps", []) if isinstance(s, dict) and s.get("id") == request.step), None
    )
    if step is None:
        return f"the reviewed plan {plan_file} has no step {request.step!r}"
    reviewed = [_facts(h, step.get("timeout")) for h in step.get("hosts", [])]
    now = [_facts(h, h.get("timeout")) for h in approved.get("hosts", [])]
    if reviewed == now:
        return f"the step is as reviewed in {plan_file} (plan sha256 {saved.get(reviewing.DIGEST_KEY)})"
    lines = difflib.unified_diff(
        _lines(reviewed), _lines(now), f"reviewed {plan_file}", "to approve", lineterm=""
    )
    return "differs from the reviewed plan:\n" + "\n".join(lines)


def _facts(host: dict[str, Any], timeout: Any) -> dict[str, Any]:
    env = host.get("env", [])
    names = sorted(env) if isinstance(env, (dict, list)) else []
    names = sorted(set(names) | set(host.get("secret_vars", {})))
    return {
        "host": host.get("host"),
        "commands": host.get("commands"),
        "cwd": host.get("cwd"),
        "env": names,
        "timeout": timeout,
    }


def _lines(facts: list[dict[str, Any]]) -> list[str]:
    return json.dumps(facts, indent=2, sort_keys=True).splitlines()
