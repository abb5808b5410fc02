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
    from engine.planning import HostPlan

_SEPARATORS = re.compile(r"\|\||&&|[|;&()]|\$\(|`")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_WORDS = frozenset(
    "if then else elif fi for while until do done case esac in function select time ! { } [ [[ ]] "
    "cd export set unset test echo printf read true false exit return local shift eval exec "
    "command type wait trap ulimit umask source . : break continue".split())


def first_words(script: str) -> list[str]:
    """Programs a script starts, in order of appearance, without repeats."""
    found: list[str] = []
    for line in script.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for segment in _SEPARATORS.split(line):
            for word in _programs(segment):
                if word not in found:
                    found.append(word)
    return found


def _programs(segment: str) -> list[str]:
    """`xargs -r docker restart` → xargs and docker: a prefix command and the one it starts."""
    try:
        words = shlex.split(segment)
    except ValueError:
        words = segment.split()
    found: list[str] = []
    while words:
        while words and (_ASSIGNMENT.match(words[0]) or words[0].startswith("-")):
            words = words[1:]
        if not words or not _is_program(words[0]):
            break
        found.append(words[0])
        if words[0] not in _PREFIXES:
            break
        words = words[1:]
    return found


_PREFIXES = frozenset({"sudo", "env", "nohup", "nice", "xargs", "time"})


def _is_program(word: str) -> bool:
    return word not in _SHELL_WORDS and re.fullmatch(r"[\w.+-]+", word) is not None


def needed(host_plans: Iterable[HostPlan], requires: Iterable[str]) -> tuple[str, ...]:
    """The programs every host of a step must have."""
    found: list[str] = []
    for host_plan in host_plans:
        for variant in host_plan.variants:
            for word in first_words(variant.script):
                if word not in found:
                    found.append(word)
    found += [r for r in requires if r not in found]
    return tuple(found)
