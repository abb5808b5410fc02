"""Approvals without a shared database: SSH signatures over the approved document (`ssh-keygen -Y`).

The waiting run writes the document to `<state_dir>/approvals/<run_id>/<step>/document.json` (with the
request beside it); an approver signs exactly those bytes with their own key, in the namespace
`runbook-approval` (`ssh-keygen -Y sign -f KEY -n runbook-approval document.json`, or `runbook approve …
--key KEY`), and the signature file (`*.sig`) is given to the run by putting it in that directory. The run
checks each with `ssh-keygen -Y verify` against the `allowed_signers` file the runbook or `--allowed-signers`
names, and by the database's rules: the signer's principal is not the requester, each principal counts
once, and, with `from:`, the principal is one of them. A signature that fails any of these is said, and
does not count.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from engine.approvals.desk import Given, Request
from engine.approvals.document import NAMESPACE
from engine.errors import UsageError
from engine.journal import safe_filename
from engine.records import Verdict

POLL = 1.0
DOCUMENT = "document.json"
REQUEST = "request.json"
CLOSED = "closed"


class SignatureDesk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = f"signatures in {root}"
        self._refused: dict[Path, str] = {}  # signatures that do not count, and why
        self._said: set[Path] = set()

    def who(self) -> str:
        return getpass.getuser()

    def folder(self, request: Request) -> Path:
        return self.root / safe_filename(request.run_id) / safe_filename(request.step)

    def request(self, request: Request) -> Request:
        folder = self.folder(request)
        folder.mkdir(parents=True, exist_ok=True)
        recorded = Request(**{**asdict(request), "since": _now()})
        old = folder / REQUEST
        if old.exists() and json.loads(old.read_text(encoding="utf-8")).get("sha256") == request.sha256:
            recorded = _read(old)
        else:
            for stale in folder.glob("*.sig"):  # signatures of another document: kept apart, never counted
                stale.rename(stale.with_suffix(".void"))
        (folder / DOCUMENT).write_text(request.document, encoding="utf-8")
        old.write_text(json.dumps(asdict(recorded), indent=2), encoding="utf-8")
        (folder / CLOSED).unlink(missing_ok=True)
        return recorded

    def decisions(self, request: Request) -> list[Given]:
        folder, found, seen = self.folder(request), [], set()
        for signature in sorted(folder.glob("*.sig")):
            verdict = check(request, signature, folder / DOCUMENT)
            if isinstance(verdict, str) or verdict.approver in seen:
                why = verdict if isinstance(verdict, str) else f"{verdict.approver} signed already"
                self._refused.setdefault(signature, why)
                continue
            seen.add(verdict.approver)
            found.append(verdict)
        return found

    def refused(self) -> list[str]:
        new = [why for path, why in self._refused.items() if path not in self._said]
        self._said.update(self._refused)
        return new

    def wait(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, POLL)))

    def close_request(self, request: Request) -> None:
        (self.folder(request) / CLOSED).touch()

    def pending(self) -> list[Request]:
        found = [_read(p) for p in self.root.glob(f"*/*/{REQUEST}") if not (p.parent / CLOSED).exists()]
        return sorted(found, key=lambda r: r.since)

    def find(self, run_id: str, step: str) -> Request | None:
        found = [_read(p) for p in self.root.glob(f"*/*/{REQUEST}")]
        mine = [r for r in found if r.run_id.startswith(run_id) and r.step == step]
        return sorted(mine, key=lambda r: r.since)[-1] if mine else None

    def give(self, request: Request, verdict: Verdict, comment: str, key: Path | None) -> Given:
        """The approver's side on a machine that shares the state directory: sign the document with
        `key` (`--key`) into the run's folder, then check it as the run will."""
        if verdict is not Verdict.APPROVED:
            raise UsageError(
                "on files a signature only approves; to stop the run, stop it (Ctrl-C) where it runs"
            )
        if key is None:
            raise UsageError("on files an approval is an SSH signature: give your key with --key FILE")
        signature = self.sign(request, key)
        found = check(request, signature, self.folder(request) / DOCUMENT)
        if isinstance(found, str):
            signature.unlink()
            raise UsageError(f"the signature does not approve: {found}")
        return found

    def sign(self, request: Request, key: Path) -> Path:
        """Sign the document with `key` into the run's folder; the signature's path."""
        document = self.folder(request) / DOCUMENT
        signature = document.with_name(f"{safe_filename(key.stem)}-{int(time.time())}.sig")
        done = _keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, stdin=request.document.encode())
        if done.returncode:
            raise UsageError(f"ssh-keygen could not sign with {key}: {done.stderr.decode().strip()}")
        signature.write_bytes(done.stdout)
        return signature

    def close(self) -> None:
        return None


def check(request: Request, signature: Path, document: Path) -> Given | str:
    """A signature's approval, or why it does not count."""
    signers = request.allowed_signers
    if not signers:
        return "no allowed_signers file: name one in approval.allowed_signers or with --allowed-signers"
    found = _keygen("-Y", "find-principals", "-s", str(signature), "-f", signers)
    principals = found.stdout.decode().split() if found.returncode == 0 else []
    if not principals:
        return f"{signature.name}: not signed by a key of {signers}"
    principal = principals[0]
    verified = _keygen(
        "-Y",
        "verify",
        "-f",
        signers,
        "-I",
        principal,
        "-n",
        NAMESPACE,
        "-s",
        str(signature),
        stdin=document.read_bytes(),
    )
    if verified.returncode:
        return f"{signature.name}: not a {NAMESPACE} signature of this document by {principal}"
    if principal == request.requester:
        return f"{signature.name}: signed by {principal}, who asked for the approval: another operator must"
    if request.from_ and principal not in request.from_:
        return f"{signature.name}: {principal} is not one of {', '.join(request.from_)}"
    stamp = datetime.fromtimestamp(signature.stat().st_mtime, UTC)
    key = verified.stdout.decode().strip().rsplit(" ", 1)[-1]
    return Given(
        run_id=request.run_id,
        step=request.step,
        sha256=request.sha256,
        verdict=Verdict.APPROVED,
        approver=principal,
        given=stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        proof=f"ssh signature {signature.name} by {principal} ({key})",
    )


def _keygen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ssh-keygen", *args], input=stdin, capture_output=True, timeout=30)


def _read(path: Path) -> Request:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Request(**{**data, "from_": tuple(data.get("from_", ()))})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
