"""`programs.first_words`: which programs a script starts, for preflight to look for on every host."""

from __future__ import annotations

import pytest

from engine.programs import first_words


@pytest.mark.parametrize(
    ("script", "programs"),
    [
        ("docker restart kubelet", ["docker"]),
        # the procedure's restart block: every stage of a pipeline, and the program xargs starts
        (
            'docker ps | grep flannel | cut -f 1 -d " " | xargs -r docker restart',
            ["docker", "grep", "cut", "xargs"],
        ),
        ("ls | xargs -r -n 1 rm", ["ls", "xargs", "rm"]),
        (
            "kubectl get pods && helm list || curl -f x; wget y & jq .",
            ["kubectl", "helm", "curl", "wget", "jq"],
        ),
        ("FOO=1 BAR=2 terraform apply", ["terraform"]),
        ("sudo -u root systemctl restart kubelet", ["sudo", "systemctl"]),
        ("sudo -E env -u HOME FOO=1 kubectl version", ["sudo", "env", "kubectl"]),
        ("nohup nice -n 5 tar xzf a.tgz &", ["nohup", "nice", "tar"]),
        ("time make", ["make"]),
        ("out=$(hostname -f) && echo `uname -r`", ["hostname", "uname"]),
        ("if kubectl get ns x; then docker ps; else podman ps; fi", ["kubectl", "docker", "podman"]),
        ('while read -r id; do docker rm "$id"; done < ids', ["docker"]),
        # builtins, keywords, tests and explicit paths are not programs to look for
        ("cd /tmp && echo hi; export X=1; [ -f x ] || test -d y; printf %s z; true", []),
        ("./rke_linux-amd64 up && /usr/bin/env python3 x.py", []),
        ("# a comment\n\n  # another\nrsync -a a b  # trailing comment names no program", ["rsync"]),
        ("docker ps\ndocker ps -q\nssh host", ["docker", "ssh"]),
    ],
)
def test_first_words(script: str, programs: list[str]) -> None:
    assert first_words(script) == programs


def test_unbalanced_quotes_fall_back_to_plain_words() -> None:
    assert first_words("grep 'unterminated") == ["grep"]
