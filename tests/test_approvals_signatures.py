"""Four eyes without a database: SSH signatures over the approved document, made and checked by the real
`ssh-keygen -Y` (engine/approvals/signatures.py), and a run on files that waits for one.

Keys: bob and carol may approve (principals in allowed_signers); alice asks (her key is in allowed_signers
too: she may approve others' steps, never her own); eve's key is in no allowed_signers file.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from engine.approvals.desk import Request
from engine.approvals.document import NAMESPACE, sha256
from engine.approvals.signatures import DOCUMENT, REQUEST, SignatureDesk, check
from engine.errors import UsageError
from engine.records import Verdict
from runbooks import Lab, read_until_text

DOCUMENT_TEXT = '{"hosts":[{"commands":{"*":"./rke etcd snapshot-restore"}}],"run_id":"r1","step":"restore"}'


def keygen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ssh-keygen", *args], input=stdin, capture_output=True, timeout=30, check=True)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    found = {}
    for name in ("alice", "bob", "carol", "eve"):
        key = tmp_path / f"{name}_key"
        keygen("-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key))
        found[name] = key
    lines = [
        f"{n} {' '.join(found[n].with_suffix('.pub').read_text().split()[:2])}"
        for n in ("alice", "bob", "carol")
    ]
    (tmp_path / "allowed_signers").write_text("\n".join(lines) + "\n")
    return found


@pytest.fixture
def desk(tmp_path: Path, keys: dict[str, Path]) -> tuple[SignatureDesk, Request]:
    desk = SignatureDesk(tmp_path / "approvals")
    request = Request(
        run_id="r1",
        step="restore",
        runbook="fe",
        sha256=sha256(DOCUMENT_TEXT),
        document=DOCUMENT_TEXT,
        required=1,
        allowed_signers=str(tmp_path / "allowed_signers"),
        requester="alice",
    )
    return desk, desk.request(request)


def sign(key: Path, text: str, into: Path, namespace: str = NAMESPACE) -> Path:
    signed = keygen("-Y", "sign", "-f", str(key), "-n", namespace, stdin=text.encode())
    into.write_bytes(signed.stdout)
    return into


def test_a_good_signature_by_another_operator_approves(
    desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, request = desk
    folder = desk_.folder(request)
    assert (folder / DOCUMENT).read_text() == DOCUMENT_TEXT
    sign(keys["bob"], DOCUMENT_TEXT, folder / "bob.sig")
    [given] = desk_.decisions(request)
    assert given.approver == "bob" and given.proof.startswith("ssh signature bob.sig by bob (SHA256:")
    assert desk_.refused() == []


@pytest.mark.parametrize(
    ("signer", "namespace", "text", "why"),
    [
        ("bob", "git", DOCUMENT_TEXT, "not a runbook-approval signature of this document by bob"),
        ("eve", NAMESPACE, DOCUMENT_TEXT, "not signed by a key of"),
        ("alice", NAMESPACE, DOCUMENT_TEXT, "signed by alice, who asked for the approval"),
        ("bob", NAMESPACE, DOCUMENT_TEXT.replace("restore", "remove"), "not a runbook-approval signature"),
    ],
    ids=["wrong-namespace", "unknown-signer", "requester's-own-key", "tampered-document"],
)
def test_a_signature_that_breaks_a_rule_does_not_count(
    desk: tuple[SignatureDesk, Request],
    keys: dict[str, Path],
    signer: str,
    namespace: str,
    text: str,
    why: str,
) -> None:
    desk_, request = desk
    sign(keys[signer], text, desk_.folder(request) / "x.sig", namespace)
    assert desk_.decisions(request) == []
    [said] = desk_.refused()
    assert why in said
    assert desk_.refused() == []  # said once


def test_from_limits_the_principals_and_each_counts_once(
    desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, request = desk
    folder = desk_.folder(request)
    sign(keys["bob"], DOCUMENT_TEXT, folder / "bob-1.sig")
    sign(keys["bob"], DOCUMENT_TEXT, folder / "bob-2.sig")
    assert [g.approver for g in desk_.decisions(request)] == ["bob"]
    only_carol = replace(request, from_=("carol",))
    assert check(only_carol, folder / "bob-1.sig") == "bob-1.sig: bob is not one of carol"


def test_a_run_on_files_waits_for_a_signature_and_journals_it(tmp_path: Path, keys: dict[str, Path]) -> None:
    lab = Lab(tmp_path / "ws", tmp_path / "ws-home")
    lab.root.mkdir()
    lab.home.mkdir()
    lab.write(
        'runbook: 1\nname: fe\nversion: "1"\ntitle: T\nsteps:\n  - id: restore\n    title: Restore\n'
        f"    run: touch {tmp_path}/restored\n"
        f"    approval: {{required: 1, timeout: 60s, allowed_signers: {tmp_path}/allowed_signers}}\n"
    )
    running = lab.start(lab.book, "--yes", env={"USER": "alice", "LOGNAME": "alice"})
    read_until_text(running, "to approve, on another workstation: runbook approve")
    [folder] = (lab.state / "approvals").glob("*/restore")
    sign(keys["alice"], (folder / DOCUMENT).read_text(), folder / "alice.sig")  # her own: does not count
    read_until_text(running, "does not count: alice.sig: signed by alice, who asked for the approval")
    approved = lab.run(folder.parent.name, "restore", "--yes", "--key", keys["bob"], task="approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    code, out, err = running.finish()
    assert code == 0, out + err
    assert (tmp_path / "restored").exists()
    shown = lab.run(folder.parent.name, task="runs")
    assert (
        "approval: approved" in shown.stdout and "ssh signature" in shown.stdout and "by bob" in shown.stdout
    )


def test_a_signed_rejection_stops_and_its_comment_cannot_be_changed(
    desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, request = desk
    given = desk_.give(request, Verdict.REJECTED, "wrong snapshot", keys["carol"])
    assert (given.verdict, given.approver, given.comment) == (Verdict.REJECTED, "carol", "wrong snapshot")
    [said] = desk_.folder(request).glob("*.said")
    said.write_text(said.read_text().replace("wrong snapshot", "fine"))  # the comment changed afterwards
    assert desk_.decisions(request) == []
    assert "not a runbook-approval signature of this document by carol" in desk_.refused()[0]


def test_the_requester_cannot_sign_through_approve(
    desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, request = desk
    with pytest.raises(UsageError, match="signed by alice, who asked for the approval"):
        desk_.give(request, Verdict.APPROVED, "", keys["alice"])
    assert list(desk_.folder(request).glob("*.sig")) == []


def test_a_signature_of_an_old_document_put_back_with_that_document_does_not_count(
    desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, old = desk
    folder = desk_.folder(old)
    sign(keys["bob"], DOCUMENT_TEXT, folder / "bob.sig")  # bob approved the old values
    changed = DOCUMENT_TEXT.replace("snapshot-restore", "snapshot-restore --wipe")
    new = desk_.request(replace(old, document=changed, sha256=sha256(changed)))  # a value changed: voided
    assert not (folder / "bob.sig").exists()
    (folder / "bob.void").rename(folder / "bob.sig")  # someone with write access puts it back
    (folder / DOCUMENT).write_text(DOCUMENT_TEXT)  # with the document it signs
    assert desk_.decisions(new) == []
    [said] = desk_.refused()
    assert "bob.sig: not a runbook-approval signature of this document by bob" in said
    with pytest.raises(UsageError, match=f"is not the document asked for .sha256 {new.sha256[:16]}"):
        desk_.give(new, Verdict.APPROVED, "", keys["carol"])  # approve on files signs only what is asked


def test_a_request_edited_on_disk_is_ignored_on_resume(
    tmp_path: Path, desk: tuple[SignatureDesk, Request], keys: dict[str, Path]
) -> None:
    desk_, asked = desk
    asked = desk_.request(replace(asked, from_=("bob",)))
    folder = desk_.folder(asked)
    forged = tmp_path / "forged_signers"  # alice's own key under another name
    forged.write_text(f"carol {' '.join(keys['alice'].with_suffix('.pub').read_text().split()[:2])}\n")
    edited = {
        **json.loads((folder / REQUEST).read_text()),
        "allowed_signers": str(forged),
        "from_": [],
        "requester": "mallory",
        "required": 0,
    }
    (folder / REQUEST).write_text(json.dumps(edited))
    resumed = desk_.request(replace(asked, since=""))  # the run's own request again, same document
    assert resumed == asked  # `since` kept from the first asking, every trust field the run's own
    sign(keys["alice"], DOCUMENT_TEXT, folder / "alice.sig")
    assert desk_.decisions(resumed) == []
    assert "signed by alice, who asked for the approval" in desk_.refused()[0]
