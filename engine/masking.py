"""Secret masking: every form a secret can take in output is replaced by `MASK` before anything is shown or kept.

A secret leaks in more shapes than its own text: a step may print it base64-encoded (a Kubernetes secret, an
HTTP basic-auth header, `echo $TOKEN | base64`), URL-encoded (a connection string), JSON-escaped (our own
journal is JSON), or one line at a time (callers mask output line by line, so a multi-line key is masked line
by line too). `Masker` compiles all those forms of all secrets into one regular expression, built as a trie
so that masking stays one linear pass however many secrets there are.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus

MASK = "********"
MIN_SECRET_LENGTH = 8

_URLSAFE = str.maketrans("+/", "-_")


def secret_problem(value: str) -> str | None:
    """Say why `value` cannot be a secret, or None if it can.

    Short secrets are refused rather than left unmasked: a 3-character password would be masked wherever those
    3 characters occur, and its base64 fragments are 2 or 3 characters that occur everywhere, so the output
    would be blanked without protecting anything.
    """
    if len(value.strip()) < MIN_SECRET_LENGTH:
        return (
            f"a secret must be at least {MIN_SECRET_LENGTH} characters (not counting surrounding whitespace): "
            "a shorter one cannot be masked in output without blanking unrelated text"
        )
    return None


WRAP_WIDTHS = (76, 64)
"""Line widths encoders wrap base64 at: GNU `base64` and MIME (76), PEM and `openssl base64` (64)."""


def _base64_forms(data: bytes) -> Iterator[str]:
    """The base64 shapes of `data`: on its own (padded and not), embedded in a larger encoded string, wrapped.

    Embedded at byte offset k (mod 3), the output characters whose 6 bits come only from `data` are the same
    whatever surrounds it; those "stable middles" are what we can recognise, for each of the 3 alignments.
    A long secret piped through `base64` comes out wrapped, and output is masked line by line, so the lines
    of the wrapped encoding are forms too: of the secret alone, and of the secret at the start of the input
    (`echo "$TOKEN" | base64` adds a newline). Where the wrap falls inside a larger input is unknowable.
    """
    alone = base64.b64encode(data).decode("ascii")
    yield alone
    yield alone.rstrip("=")
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + data).decode("ascii")
        start, end = -(-8 * k // 6), 8 * (k + len(data)) // 6
        yield encoded[start:end]
        if k == 0:
            for width in WRAP_WIDTHS:
                yield from _wrapped(alone, width)
                yield from _wrapped(encoded[start:end], width)


def _wrapped(encoded: str, width: int) -> Iterator[str]:
    """The lines of `encoded` wrapped at `width` (only when it is longer: else it is a form already)."""
    if len(encoded) > width:
        yield from (encoded[i : i + width] for i in range(0, len(encoded), width))


def _encoded_forms(value: str) -> Iterator[str]:
    """`value` verbatim, JSON-escaped, URL-encoded and base64-encoded in both alphabets."""
    yield value
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield quote(value, safe="")
    yield quote(value)
    yield quote_plus(value)
    for form in _base64_forms(value.encode("utf-8")):
        yield form
        yield form.translate(_URLSAFE)


def secret_forms(secret: str) -> set[str]:
    """Every form of `secret` to mask; forms shorter than `MIN_SECRET_LENGTH` are dropped.

    Dropping them is deliberate: the short forms are a short line of a multi-line secret or a short base64
    fragment, and masking every occurrence of a few common characters would blank unrelated output while
    revealing, by where the holes are, that something was masked.
    """
    values = [secret]
    if "\n" in secret or "\r" in secret:
        values += [line.strip() for line in secret.splitlines()]
    forms = {form for value in values for form in _encoded_forms(value)}
    return {form for form in forms if len(form.strip()) >= MIN_SECRET_LENGTH}


_Trie = dict[str, "_Trie"]  # one child per next character; the key "" marks the end of a word


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words`, longest first, that branches on one character at a time.

    A flat `a|b|c` alternation is tried alternative by alternative at every position of the text; a trie makes
    the cost per position independent of the number of secrets. Greedy optional groups keep the longest match.
    """
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node_pattern(trie)


def _trie_node_pattern(node: _Trie) -> str:
    """Runs of single-child nodes become one literal, so recursion only happens where words diverge."""
    chain = ""
    while len(node) == 1 and "" not in node:
        ((char, node),) = node.items()
        chain += char
    branches = [re.escape(char) + _trie_node_pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return re.escape(chain)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return re.escape(chain) + (f"(?:{body})?" if "" in node else body)


class Masker:
    """Replaces every form of every secret by `MASK`; falsy when there is nothing to mask, so callers skip work."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms |= secret_forms(secret)
        self.forms: tuple[str, ...] = tuple(sorted(forms, key=lambda form: (-len(form), form)))
        self._pattern = re.compile(_trie_pattern(self.forms)) if self.forms else None

    def mask(self, text: str) -> str:
        """`text` with every occurrence of a secret form replaced by `MASK`."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def __bool__(self) -> bool:
        return self._pattern is not None
