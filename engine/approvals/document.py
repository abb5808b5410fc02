"""What an approval covers: the step exactly as it will run, as one canonical JSON document.

The run id, the step, and per host the rendered command (secrets masked: approvers never see them), its
cwd, the names of its environment variables and the timeout, with the runbook's and the plan's sha256.
Canonical (sorted keys, no spaces, UTF-8) so that the same step gives the same bytes everywhere: its sha256
is what an approval names, and an approval applies only to a document with that sha256. Anything that
changes what runs (another value on resume, an edited runbook under `--force`, another host set) changes the
document, and the approval is asked for again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.planning import HostPlan, PlannedStep

NAMESPACE = "runbook-approval"
"""The `ssh-keygen -Y sign -n` namespace of an approval signature: a signature made for anything else
(a git commit, a file) never approves a step."""


@dataclass(frozen=True)
class Approved:
    text: str  # the canonical JSON
    sha256: str
    runbook_sha256: str
    plan_sha256: str

    def digests(self) -> dict[str, str]:
        return {"sha256": self.sha256, "runbook_sha256": self.runbook_sha256, "plan_sha256": self.plan_sha256}


def document(
    run_id: str, planned: PlannedStep, runbook_sha256: str, plan_sha256: str, mask: Callable[[str], str]
) -> Approved:
    data = {
        "kind": NAMESPACE,
        "run_id": run_id,
        "step": planned.id,
        "title": planned.title,
        "manual": mask(planned.manual) if planned.manual is not None else None,
        "hosts": [_host(h, planned, mask) for h in planned.hosts],
        "runbook_sha256": runbook_sha256,
        "plan_sha256": plan_sha256,
    }
    text = canonical(data)
    return Approved(text, sha256(text), runbook_sha256, plan_sha256)


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def readable(text: str) -> str:
    """The document as an approver reads it: indented, keys in order."""
    return json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False)


def _host(host_plan: HostPlan, planned: PlannedStep, mask: Callable[[str], str]) -> dict[str, Any]:
    return {
        "host": host_plan.host.display,
        "commands": {v.platform: mask(v.script) for v in host_plan.variants},
        "cwd": mask(host_plan.cwd) if host_plan.cwd is not None else None,
        "env": sorted({name for name, _ in host_plan.env} | {name for name, _ in host_plan.secret_env}),
        "timeout": planned.step.timeout,
        "skip": host_plan.skip,
    }
