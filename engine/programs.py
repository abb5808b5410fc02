"""Which programs a step needs on its hosts, so preflight can check them before anything runs.

The first word of each simple command in a script (after `|`, `&&`, `||`, `;`, `xargs`, inside `$(…)`), split
the way a POSIX shell splits it (quotes, escapes, comments, here-documents), plus the step's `requires`
(`!word` takes a word back out). Shell keywords and builtins, variable assignments and explicit paths are
left out: a path is the runbook's own `checks` to prove (`test -x ./rke_linux-amd64`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.model import Command

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
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
_BACKTICKS = re.compile(r"`([^`]*)`")
_HEREDOC = re.compile(
    r"<<-?[ \t]*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1[^\n]*\n(.*?)(?:^[ \t]*\2[ \t]*$|\Z)", re.S | re.M
)
_PUNCTUATION = ";&|()<>\n"
_UNQUOTED_TOKEN = re.compile(r"[;&|()<>\n]+|[^ \t\r;&|()<>\n]+")
_OPERATOR_RUN = re.compile(r"[;&|()<>\n]+")
_QUOTED = "\\"  # before a quoted word made only of operator characters: a word, not an operator
_PLACEHOLDER = " $VALUE "
_MAX_DEPTH = 20  # command substitutions inside command substitutions; bounded


def first_words(script: str) -> list[str]:
    """Programs a script starts, in order of appearance, without repeats."""
    return list(_first_words(script, 0))


@functools.lru_cache(maxsize=4096)
def _first_words(script: str, depth: int) -> tuple[str, ...]:
    """Split as a POSIX shell does (quotes, escapes, comments, operators), so a quoted argument
    such as `python3 -c 'import sys; print(sys.version)'` stays one word; cached, since a plan asks about
    the same script for every step that shares it."""
    script = _BACKTICKS.sub(r"$(\1)", _ARITHMETIC.sub(_PLACEHOLDER, script))  # `…` is $(…) written old-style
    script = without_here_documents(script)  # a here-document is data
    found: list[str] = []
    for words in _simple_commands(_tokens(script.replace("\n", "\n;"))):
        for word in [*_programs(words), *_substituted(words, depth)]:
            if word not in found:
                found.append(word)
    return tuple(found)


def without_here_documents(script: str) -> str:
    """The script with the body of each here-document taken out; a `<<` inside quotes starts none."""
    kept, position = [], 0
    while match := _HEREDOC.search(script, position):
        if _in_quotes(script, match.start()):
            kept.append(script[position : match.start() + 2])
            position = match.start() + 2
            continue
        kept.append(script[position : match.start(3)])
        position = match.end()
    return "".join(kept) + script[position:]


def _in_quotes(script: str, index: int) -> bool:
    """Whether `index` stands inside quotes on its line (quotes spanning lines are rare in a runbook's `run`)."""
    quote, i = "", script.rfind("\n", 0, index) + 1
    while i < index:
        c = script[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if c in "'\"" and quote in ("", c):
            quote = "" if quote else c
        i += 1
    return bool(quote)


def _tokens(script: str) -> list[str]:
    """Words and operators. Text without quotes, escapes or comments splits with a regular expression;
    quoted text goes through `_Words`. A newline ends a command, and a comment swallows the newline that ends
    it: hence the `;` the caller puts after each."""
    if not any(c in script for c in "'\"\\#"):
        return _UNQUOTED_TOKEN.findall(script)
    return _Words(script).split()


class _Words:
    """The POSIX shell's token rules (quotes, backslash, comments, operators), in one pass.

    Not `shlex`: its punctuation mode returns a quoted `'('` or an escaped `\\;` as the same token as the
    operator, so `alpha '(' 0` would start `0`; here an operator is only what stands outside quotes (a test
    checks this against bash on generated scripts). A quoted operator comes back as `_QUOTED` + itself.
    """

    def __init__(self, script: str) -> None:
        self.script, self.word, self.quoted = script, "", False
        self.tokens: list[str] = []

    def split(self) -> list[str]:
        text, i = self.script, 0
        while i < len(text):
            c = text[i]
            if c == "\\":
                self.word, self.quoted, i = self.word + text[i + 1 : i + 2], True, i + 2
                continue
            if c in "'\"":
                i = self._quoted_text(i)
                continue
            if c == "#" and not self.word and not self.quoted:
                i = text.find("\n", i)
                i = len(text) if i < 0 else i
                continue
            if c in " \t\r" or c in _PUNCTUATION:
                self._end()
                if c in _PUNCTUATION:
                    run = _OPERATOR_RUN.match(text, i)
                    assert run is not None
                    self.tokens.append(run.group(0))
                    i = run.end()
                    continue
            else:
                self.word += c
            i += 1
        self._end()
        return self.tokens

    def _quoted_text(self, start: int) -> int:
        """The text between quotes joins the word (inside "…", a backslash escapes only $ ` " \\ and the
        newline); returns where reading goes on. Unbalanced, the shell refuses the script: read to the end."""
        text, quote, i = self.script, self.script[start], start + 1
        self.quoted = True
        while i < len(text) and text[i] != quote:
            if quote == '"' and text[i] == "\\" and text[i + 1 : i + 2] in ('"', "\\", "$", "`", "\n"):
                i += 1
            self.word += text[i : i + 1]
            i += 1
        return i + 1

    def _end(self) -> None:
        if self.word or self.quoted:
            word_is_operator = self.word and all(c in _PUNCTUATION for c in self.word)
            self.tokens.append(_QUOTED + self.word if word_is_operator else self.word)
        self.word, self.quoted = "", False


def _simple_commands(tokens: list[str]) -> list[list[str]]:
    """Tokens → the words of each simple command; a redirection's operator is kept before its target, and
    the words after `)` (which ends a subshell or `$(…)`) belong to no new command. Inside `case … in`, the
    patterns (`start|stop)`) are no command: `_Cases` follows where they stand."""
    commands: list[list[str]] = [[]]
    cases = _Cases()
    for token in tokens:
        operator = bool(token) and all(c in _PUNCTUATION for c in token) and not any(c in "<>" for c in token)
        if cases.in_pattern:
            if cases.pattern_token(token, operator):
                commands.append([])
            continue
        if operator:
            cases.after_operator(token)
            commands.append([] if ")" not in token or cases.in_pattern else [_PLACEHOLDER.strip()])
        else:
            cases.after_word(token, commands[-1])
            commands[-1].append(token)
    return [c for c in commands if c]


class _Cases:
    """Where a script stands in its `case` statements (nested ones too): in a list of patterns, which ends
    at `)` with the clause's commands, or in those commands, which end at `;;` (`;&`, `;;&`) or `esac`."""

    def __init__(self) -> None:
        self.stack: list[str] = []  # per open `case`: "subject", "pattern" or "commands"

    @property
    def in_pattern(self) -> bool:
        return bool(self.stack) and self.stack[-1] in ("subject", "pattern")

    def after_word(self, word: str, command: list[str]) -> None:
        """A word in command position: `case` opens a statement, `esac` as a command's first word ends one."""
        first = all(w in _LEADING_WORDS for w in command)
        if word == "case" and first:
            self.stack.append("subject")
        elif word == "esac" and first and self.stack:
            self.stack.pop()

    def after_operator(self, token: str) -> None:
        if self.stack and (";;" in token or ";&" in token):
            self.stack[-1] = "pattern"

    def pattern_token(self, token: str, operator: bool) -> bool:
        """A token among the subject or patterns; True when a clause's commands start after it."""
        state = self.stack[-1]
        if not operator:
            if token == "esac" and state == "pattern":
                self.stack.pop()
            elif token == "in" and state == "subject":
                self.stack[-1] = "pattern"
            return False
        if state == "pattern" and ")" in token:
            self.stack[-1] = "commands"
            self.after_operator(token[token.index(")") + 1 :])
            return True
        return False


def _substituted(words: list[str], depth: int) -> list[str]:
    """Programs started by a `$(…)` left inside a word (double quotes keep it whole)."""
    if depth >= _MAX_DEPTH:
        return []
    found: list[str] = []
    for word in words:
        if "$(" in word:
            for match in _SUBSTITUTION.finditer(word):
                found += _first_words(match.group(1), depth + 1)
    return found


def _programs(words: list[str]) -> list[str]:
    """`xargs -r docker restart` → xargs and docker: a prefix command and the one it starts."""
    found: list[str] = []
    prefix = ""
    while words:
        word, words = words[0], words[1:]
        if (word and word[0] in "<>") or (word.isdigit() and words and words[0][:1] in "<>"):
            words = words[1:] if word[0] in "<>" else words  # `>out cmd`, `2>/dev/null cmd`: the target too
        elif word == "$":  # `$(`: the substitution's own words are a command of their own
            break
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


# Commands the shell runs itself: their arguments never reach an argument list that `ps` can show.
_BUILTINS_WITHOUT_ARGV = frozenset(
    {"echo", "printf", "export", "local", "read", "test", "[", "[[", ":", "true"}
)


def argument_receivers(script: str, marker: str) -> list[str]:
    """The programs a script starts with a word containing `marker` in their arguments, where `ps` on the
    host shows it while they run (a `NAME=value` prefix, a builtin such as `printf`, or a here-document
    keep it out of any argument list)."""
    script = _BACKTICKS.sub(r"$(\1)", _ARITHMETIC.sub(_PLACEHOLDER, script))
    script = without_here_documents(script)
    found: list[str] = []
    for words in _simple_commands(_tokens(script.replace("\n", "\n;"))):
        arguments = list(words)
        while arguments and (_ASSIGNMENT.match(arguments[0]) or arguments[0] in _LEADING_WORDS):
            arguments = arguments[1:]
        program = arguments[0] if arguments else ""
        if program not in _BUILTINS_WITHOUT_ARGV and any(marker in word for word in arguments[1:]):
            found.append(program)
        for word in words:
            for match in _SUBSTITUTION.finditer(word) if "$(" in word else ():
                found += argument_receivers(match.group(1), marker)
    return found


def needed(command: Command | None, requires: Iterable[str]) -> tuple[str, ...]:
    """The programs every host of a step must have, read from the command as written: the same for
    every host, and cheap (a `{{ }}` in a program's place is a value, not a program we can check).
    `requires` adds programs, and takes a word found in the command back out with `!word`."""
    found: list[str] = []
    for _, template in command.variants if command else ():
        for word in first_words(_TEMPLATE.sub("$TEMPLATE", template.text)):
            if word not in found:
                found.append(word)
    not_programs = {r[1:] for r in requires if r.startswith("!")}
    found += [r for r in requires if r not in found and not r.startswith("!")]
    return tuple(word for word in found if word not in not_programs)
