"""Approvals without a shared database: SSH signatures over the approved document (`ssh-keygen -Y`).

The waiting run writes the document to `<state_dir>/approvals/<run_id>/<step>/document.json` (with the
request beside it); an approver signs exactly those bytes with their own key, in the namespace
`runbook-approval` (`ssh-keygen -Y sign -f KEY -n runbook-approval document.json`, or `runbook approve …
--key KEY`), and the signature file (`*.sig`) is given to the run by putting it in that directory. The run
checks each with `ssh-keygen -Y verify` against the `allowed_signers` file the runbook or `--allowed-signers`
names, over the run's own document (never the folder's copy, which anyone there can put back to an older
one), and by the database's rules: the signer's principal is not the requester, each principal counts
once, and, with `from:`, the principal is one of them. A signature that fails any of these is said, and
does not count. A rejection or a comment (`approve --reject`, `--comment`) is signed together with the
document and kept beside the signature (`.said`): changing either voids the signature.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from engine.approvals.desk import Given, Request
from engine.approvals.document import NAMESPACE, sha256
from engine.errors import UsageError
from engine.journal import safe_filename
from engine.records import Verdict

POLL = 1.0
DOCUMENT = "document.json"
REQUEST = "request.json"
CLOSED = "closed"
SAID = ".said"  # beside a signature: the verdict and comment it signs with the document, when not a plain yes
PLAIN = {"verdict": Verdict.APPROVED.value, "comment": ""}


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
        """Only `since` is taken back from an earlier `request.json` of the same document (a resume):
        anyone who can write the folder can edit it, so whose keys count, who asked, `from:` and how many
        are always the run's own (its runbook and `--allowed-signers`)."""
        folder = self.folder(request)
        folder.mkdir(parents=True, exist_ok=True)
        recorded = replace(request, since=_now())
        old = folder / REQUEST
        earlier = json.loads(old.read_text(encoding="utf-8")) if old.exists() else {}
        if isinstance(earlier, dict) and earlier.get("sha256") == request.sha256:
            recorded = replace(request, since=str(earlier.get("since") or recorded.since))
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
            verdict = check(request, signature)
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
        """The approver's side on a machine that shares the state directory: sign with `key` (`--key`)
        into the run's folder, then check it as the run will."""
        if key is None:
            raise UsageError("on files an answer is an SSH signature: give your key with --key FILE")
        signature = self.sign(request, key, verdict, comment)
        found = check(request, signature)
        if isinstance(found, str):
            signature.unlink()
            signature.with_suffix(SAID).unlink(missing_ok=True)
            raise UsageError(f"the signature does not count: {found}")
        return found

    def sign(
        self, request: Request, key: Path, verdict: Verdict = Verdict.APPROVED, comment: str = ""
    ) -> Path:
        """Sign the document (and what is said about it) with `key` into the run's folder; its path.
        Refused when the folder's `document.json` or the request's text is not the document of the
        request's sha256 (put back, or edited): what is signed is what the approver was shown."""
        document = self.folder(request) / DOCUMENT
        shown = hashlib.sha256(document.read_bytes()).hexdigest() if document.exists() else "none"
        if not shown == sha256(request.document) == request.sha256:
            raise UsageError(
                f"{document} is not the document asked for (sha256 {request.sha256[:16]}…, found "
                f"{shown[:16]}…): it changed since the run asked; nothing signed"
            )
        signature = document.with_name(f"{safe_filename(key.stem)}-{time.time_ns()}.sig")
        said = {"verdict": verdict.value, "comment": comment}
        if said != PLAIN:  # a rejection or a comment is signed with the document, and kept beside it
            signature.with_suffix(SAID).write_text(json.dumps(said), encoding="utf-8")
        payload = _payload(request.document.encode(), said)
        done = _keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, stdin=payload)
        if done.returncode:
            raise UsageError(f"ssh-keygen could not sign with {key}: {done.stderr.decode().strip()}")
        signature.write_bytes(done.stdout)
        return signature

    def close(self) -> None:
        return None


def _payload(document: bytes, said: dict[str, str]) -> bytes:
    """What is signed: the document alone for a plain approval (`ssh-keygen -Y sign document.json` by
    hand), else the document and what is said about it."""
    if said == PLAIN:
        return document
    return document + b"\n" + json.dumps(said, sort_keys=True).encode()


def _said(signature: Path) -> dict[str, str]:
    beside = signature.with_suffix(SAID)
    if not beside.exists():
        return dict(PLAIN)
    data = json.loads(beside.read_text(encoding="utf-8"))
    return {"verdict": str(data.get("verdict", "")), "comment": str(data.get("comment", ""))}


def check(request: Request, signature: Path) -> Given | str:
    """A signature's answer (an approval, or a rejection), or why it does not count. Verified against the
    request's own text, never the folder's `document.json`: that file can be put back to an older
    document, and an older document's signature must not approve the new one."""
    signers = request.allowed_signers
    if not signers:
        return "no allowed_signers file: name one in approval.allowed_signers or with --allowed-signers"
    found = _keygen("-Y", "find-principals", "-s", str(signature), "-f", signers)
    principals = found.stdout.decode().split() if found.returncode == 0 else []
    if not principals:
        return f"{signature.name}: not signed by a key of {signers}"
    if request.requester in principals:
        return f"{signature.name}: signed by {request.requester}, who asked for the approval: another operator must"
    allowed = [p for p in principals if not request.from_ or p in request.from_]
    if not allowed:
        return f"{signature.name}: {', '.join(principals)} is not one of {', '.join(request.from_)}"
    principal, said = allowed[0], _said(signature)
    if said["verdict"] not in (Verdict.APPROVED, Verdict.REJECTED):
        return f"{signature.name}: says {said['verdict']!r}, neither approved nor rejected"
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
        stdin=_payload(request.document.encode(), said),
    )
    if verified.returncode:
        return f"{signature.name}: not a {NAMESPACE} signature of this document by {principal}"
    stamp = datetime.fromtimestamp(signature.stat().st_mtime, UTC)
    key = verified.stdout.decode().strip().rsplit(" ", 1)[-1]
    return Given(
        run_id=request.run_id,
        step=request.step,
        sha256=request.sha256,
        verdict=Verdict(said["verdict"]),
        approver=principal,
        comment=said["comment"],
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
