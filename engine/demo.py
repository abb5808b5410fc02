"""`runbook demo`: the real ha-rollback runbook, run end to end in a throwaway lab.

No cluster, no root, no network: recording stand-ins replace `rke_*`, `docker` and `kubectl`, the RKE
cluster file lists three nodes whose steps run on this machine (`--target nodes=local`), and the manual
version check is answered by the demo itself (`--confirm-manual`), which the run says. Everything else —
validation, plan, warnings, preflight, journal, fan-out, summary — is the product as operators use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.commands import run as run_command
from engine.flags import option
from engine.options import Options

RUNBOOK = Path(__file__).resolve().parent.parent / "runbooks" / "ha-rollback.yml"
NODES = ("10.0.0.11", "10.0.0.12", "10.0.0.13")
_STAND_IN = """#!/bin/sh
# Stand-in for {name}: records the call, prints what the real tool would roughly say.
printf '%s %s %s\\n' "$(date +%H:%M:%S)" "${{RUNBOOK_HOST:-local}}" "{name} $*" >> "{log}"
{body}
"""
_BODIES = {
    "docker": """case "$1" in
  ps) printf 'a1b2c3d4e5f6 rancher/coreos-flannel:v0.10.0 "/opt/bin/flanneld" k8s_kube-flannel_canal-x\\n'
      printf 'b2c3d4e5f6a1 rancher/calico-node:v3.1.3 "start_runit" k8s_calico-node_canal-x\\n' ;;
  restart) shift; for c in "$@"; do echo "$c"; done ;;
esac""",
    "kubectl": """case "$*" in
  *"rollout status"*) echo 'deployment "cattle" successfully rolled out' ;;
  *"set image"*) echo 'deployment.extensions/cattle image updated' ;;
esac""",
    "rke": """case "$1" in
  --version) echo "rke version v0.2.8" ;;
  *) echo "INFO[0000] Running RKE version: v0.2.8 (stand-in)"; echo "INFO[0001] Finished: $*" ;;
esac""",
}
# Two nodes with every role and a worker-only one: the restart step restarts there only what RKE runs there.
ROLES = ("[controlplane, etcd, worker]", "[controlplane, etcd, worker]", "[worker]")


def build_lab(root: Path) -> dict[str, Path]:
    """The lab's files: stand-ins on a bin directory, and an RKE directory as the operator would have it."""
    bin_dir, rke_dir, log = root / "bin", root / "rke", root / "calls.log"
    bin_dir.mkdir(parents=True)
    rke_dir.mkdir()
    for name, where in (
        ("docker", bin_dir),
        ("kubectl", bin_dir),
        ("rke_linux-amd64", rke_dir),
        ("rke_darwin-amd64", rke_dir),
    ):
        body = _BODIES.get(name, _BODIES["rke"])
        path = where / name
        path.write_text(_STAND_IN.format(name=name, log=log, body=body), encoding="utf-8")
        path.chmod(0o755)
    nodes = "".join(
        f"  - address: {a}\n    user: rancher\n    role: {r}\n" for a, r in zip(NODES, ROLES, strict=True)
    )
    (rke_dir / "rancher-cluster.yml").write_text(f"nodes:\n{nodes}", encoding="utf-8")
    (rke_dir / "rancher-cluster.rkestate").write_text("{}\n", encoding="utf-8")
    (rke_dir / "kube_config_rancher-cluster.yml").write_text(
        "apiVersion: v1\nkind: Config\n", encoding="utf-8"
    )
    return {"bin": bin_dir, "rke": rke_dir, "log": log, "state": root / "state"}


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    keep: bool = option(False, help="Keep the lab directory (printed) instead of deleting it.")


def main(chosen: DemoOptions) -> int:
    keep = chosen.keep
    root = Path(tempfile.mkdtemp(prefix="runbook-demo-"))
    lab = build_lab(root)
    print(
        f"demo lab in {root}: stand-ins for rke, docker and kubectl; 3 nodes run on this machine\n"
        "the manual version check is answered by the demo (--confirm-manual)\n"
    )
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{lab['bin']}{os.pathsep}{old_path}"
    try:
        options = Options(
            str(RUNBOOK),
            var=("snapshot=pre-upgrade-2026-11-26", "prior_version=v2.0.8", f"rke_dir={lab['rke']}"),
            target=("nodes=local",),
        )
        settings = run_command.RunOptions(yes=True, confirm_manual=True, state_dir=str(lab["state"]))
        code = run_command.main(options, settings)
        print("\nwhat the stand-ins recorded (time, node, command):")
        print(lab["log"].read_text(encoding="utf-8") if lab["log"].exists() else "(nothing)")
        return code
    finally:
        os.environ["PATH"] = old_path
        if keep:
            print(f"lab kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
