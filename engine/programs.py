"""Which programs a step needs on its hosts, so preflight can check them before anything runs.

The first word of each simple command in a script (after `|`, `&&`, `||`, `;`, `xargs`), plus the step's
`requires`. Shell keywords and builtins, variable assignments and explicit paths are left out: a path is
the runbook's own `checks` to prove (`test -x ./rke_linux-amd64`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.model import Command

_SEPARATORS = re.compile(r"\|\||&&|[|;()]|(?<![<>])&(?!>)")  # not the & of 2>&1, >&2, &>
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_WORDS = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "function",
        "select",
        "time",
        "!",
        "{",
        "}",
        "[",
        "[[",
        "]]",
        "cd",
        "export",
        "set",
        "unset",
        "test",
        "echo",
        "printf",
        "read",
        "true",
        "false",
        "exit",
        "return",
        "local",
        "shift",
        "eval",
        "exec",
        "command",
        "type",
        "wait",
        "trap",
        "ulimit",
        "umask",
        "source",
        ".",
        ":",
        "break",
        "continue",
    }
)


_ARITHMETIC = re.compile(r"\$\(\((?:[^()]|\([^()]*\))*\)\)")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
_REDIRECTION = re.compile(r"[0-9]*(?:>>|&>|[<>]&?)")
_PLACEHOLDER = " $VALUE "


def first_words(script: str) -> list[str]:
    """Programs a script starts, in order of appearance, without repeats."""
    found: list[str] = []
    for line in script.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in _flatten(line):
            for segment in _SEPARATORS.split(part):
                for word in _programs(segment):
                    if word not in found:
                        found.append(word)
    return found


def _flatten(line: str) -> list[str]:
    """The line with `$((…))` and `$(…)`/backticks turned into plain values, plus the substituted commands
    (innermost first), so `kill $(cat pid) 2` starts `kill` and `cat`, and `$((n + 1))` starts nothing."""
    line = _ARITHMETIC.sub(_PLACEHOLDER, line)
    inner: list[str] = []
    for _ in range(20):  # nesting depth; bounded
        match = _SUBSTITUTION.search(line)
        if match is None:
            break
        inner.append(match.group(1) if match.group(1) is not None else match.group(2))
        line = line[: match.start()] + _PLACEHOLDER + line[match.end() :]
    return [line, *inner]


def _programs(segment: str) -> list[str]:
    """`xargs -r docker restart` → xargs and docker: a prefix command and the one it starts."""
    segment = _REDIRECTION.sub(lambda m: f" {m.group(0)} ", segment)
    if any(c in segment for c in "'\"\\"):
        try:
            words = shlex.split(segment)
        except ValueError:
            words = segment.split()
    else:  # nothing quoted: the same words, without shlex's per-character loop (large runbooks plan faster)
        words = segment.split()
    found: list[str] = []
    prefix = ""
    while words:
        word, words = words[0], words[1:]
        if _REDIRECTION.fullmatch(word):  # `>out cmd`, `2>/dev/null cmd`: skip the target too
            words = words[1:]
        elif word.startswith("-"):  # an option of the prefix command, perhaps with its value (`sudo -u root`)
            words = words[1:] if word in _VALUE_OPTIONS.get(prefix, ()) else words
        elif _ASSIGNMENT.match(word) or word in _LEADING_WORDS:
            continue
        elif not _is_program(word):
            break
        else:
            found.append(word)
            if word not in _PREFIXES:
                break
            prefix = word
    return found


_PREFIXES = frozenset({"sudo", "env", "nohup", "nice", "xargs"})
# Shell words after which a command starts on the same line: `if kubectl get ns x; then docker ps; fi`.
_LEADING_WORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "time", "{"})
_VALUE_OPTIONS = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nice": frozenset({"-n"}),
    "xargs": frozenset({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"}),
}


def _is_program(word: str) -> bool:
    return word not in _SHELL_WORDS and re.fullmatch(r"[\w.+-]+", word) is not None


def needed(command: Command | None, requires: Iterable[str]) -> tuple[str, ...]:
    """The programs every host of a step must have, read from the command as written: the same for
    every host, and cheap (a `{{ }}` in a program's place is a value, not a program we can check)."""
    found: list[str] = []
    for _, template in command.variants if command else ():
        for word in first_words(_TEMPLATE.sub("$TEMPLATE", template.text)):
            if word not in found:
                found.append(word)
    found += [r for r in requires if r not in found]
    return tuple(found)
