"""`programs.first_words`: which programs a script starts, for preflight to look for on every host."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.loading import Mark
from engine.model import Command, Template
from engine.programs import argument_receivers, first_words, needed


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
        # a `<<` inside quotes starts no here-document (found by the bash comparison below)
        ("alpha '<<_'\nbravo", ["alpha", "bravo"]),
        ('echo "a<<EOF" && curl x\nwget y', ["curl", "wget"]),
        # `case` patterns are no programs; the commands of each clause are (issue 19 item 10)
        (
            'case "$1" in\n  start|stop) docker ps ;;\n  (x|y) kubectl get ;;\n  *) echo no ;;\nesac\nhelm ls',
            ["docker", "kubectl", "helm"],
        ),
        ("case $x in a) case $y in b|c) jq . ;; esac ;; d|e)rsync;;esac; curl x", ["jq", "rsync", "curl"]),
        ("case a in\n a)\n  wget x\n  ;;\n b) ;;\nesac", ["wget"]),
        ("if true; then case $1 in x|y) ls;; esac; fi", ["ls"]),
    ],
)
def test_first_words(script: str, programs: list[str]) -> None:
    assert first_words(script) == programs


def test_unbalanced_quotes_fall_back_to_plain_words() -> None:
    assert first_words("grep 'unterminated") == ["grep"]


@pytest.mark.parametrize(
    ("script", "programs"),
    [
        ("python3 -c 'import sys; print(sys.version)'", ["python3"]),
        ("awk '{ n++; if (n) exit }' /etc/hosts", ["awk"]),
        ('python3 -c "\nimport os\nprint(os.getcwd())\n" && jq .', ["python3", "jq"]),
        ('grep -q "a|b; c" f || sed "s/x/y/"', ["grep", "sed"]),
        ('kill $(cat pid) 2 && echo "$(date +%s)"', ["kill", "cat", "date"]),
        ("cat <<EOF | kubectl apply -f -\nkind: x\nmetadata: y\nEOF\nhelm list", ["cat", "kubectl", "helm"]),
        ("cmd 2>&1 | tee log; 2>/dev/null rsync a b", ["cmd", "tee", "rsync"]),
        ("(cd /tmp && make) > log; n=$((n + 1))", ["make"]),
        ("a \\\n  --flag && b", ["a", "b"]),
    ],
)
def test_first_words_understand_shell_quoting(script: str, programs: list[str]) -> None:
    assert first_words(script) == programs


def test_requires_takes_a_word_back_out_with_a_bang() -> None:
    command = Command((("*", Template("frobnicate --x && mytool y", ("steps", 0, "run"), Mark(1, 1))),))
    assert needed(command, ["jq", "!frobnicate"]) == ("mytool", "jq")


# -- against bash's own parsing ------------------------------------------------------------------------------
# bash runs each generated script with an empty PATH and a `command_not_found_handle` that records the
# name of every command it could not find: exactly the programs the script starts, as bash splits it.

BASH = shutil.which("bash") or "/bin/bash"
_NAMES = st.sampled_from(["alpha", "bravo", "charlie", "delta", "echoes", "foxtrot", "golf2", "hotel.sh"])
_TEXT = st.text(alphabet=" ;|&(){}<>#*?=-_.,:/abcxyz019\t", min_size=0, max_size=12)
_QUOTED = st.one_of(
    _TEXT.map(lambda text: "'" + text + "'"),  # single quotes: everything literal
    _TEXT.map(lambda text: '"' + text + '"'),  # double quotes: no $ or ` in the alphabet
    _TEXT.filter(bool).map(lambda text: "".join("\\" + c for c in text)),  # every character escaped
    st.from_regex(r"\A[a-z0-9_./=-]{1,8}\Z"),  # a plain word
)
_COMMAND = st.tuples(_NAMES, st.lists(_QUOTED, max_size=4)).map(lambda c: " ".join([c[0], *c[1]]))
_SEPARATOR = st.sampled_from([" ; ", " && ", " | ", "\n", " &\n"])
_SCRIPT = st.lists(st.tuples(_COMMAND, _SEPARATOR), min_size=1, max_size=5).map(
    lambda parts: "".join(command + separator for command, separator in parts).rstrip("&\n ;|")
)


def _started_by_bash(script: str, log: Path) -> list[str]:
    log.write_text("")
    prelude = f'command_not_found_handle() {{ printf "%s\\n" "$1" >> {shlex.quote(str(log))}; return 0; }}\n'
    subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", prelude + script + "\nwait"],
        env={"PATH": "/nonexistent"},
        capture_output=True,
        timeout=10,
        check=False,
    )
    return log.read_text().split()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=_SCRIPT)
def test_first_words_match_bash_on_generated_scripts(script: str, tmp_path: Path) -> None:
    started = _started_by_bash(script, tmp_path / "started.log")
    assert started, f"bash started nothing: {script!r}"  # the generator makes scripts that start commands
    assert sorted(set(first_words(script))) == sorted(set(started)), script


@pytest.mark.parametrize(
    ("script", "receivers"),
    [
        ("vault login @S@", ["vault"]),
        ('curl -H "Authorization: Bearer @S@" https://x', ["curl"]),
        ("printf '%s\\n' @S@ | vault login -", []),  # a builtin: no argument list
        ("echo @S@ > f; TOKEN=@S@ deploy --now", []),  # an assignment: the environment of `deploy`
        ("cat <<EOF | vault login -\n@S@\nEOF\n", []),  # a here-document: standard input
        ("sudo env T=@S@ deploy", ["sudo"]),  # env's argument list shows it
        ("x=$(openssl enc -k @S@ -in f)", ["openssl"]),
    ],
)
def test_argument_receivers(script: str, receivers: list[str]) -> None:
    assert argument_receivers(script, "@S@") == receivers
