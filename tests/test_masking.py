from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.masking import MASK, MIN_SECRET_LENGTH, Masker, secret_forms, secret_problem

# The property "the secret is gone" only holds for secrets without the mask character: masking
# "a*********" for the secret "*********" leaves "********" + "*", which is the secret again.
secret_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="*"), min_size=MIN_SECRET_LENGTH
).filter(lambda value: secret_problem(value) is None)
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


def stable_middle(prefix: bytes, secret: bytes, suffix: bytes) -> str:
    """The characters of b64(prefix + secret + suffix) that depend on the secret's bytes only."""
    encoded = base64.b64encode(prefix + secret + suffix).decode()
    start, end = -(-8 * len(prefix) // 6), 8 * (len(prefix) + len(secret)) // 6
    return encoded[start:end]


def test_secret_problem_refuses_short_and_blank_values() -> None:
    assert secret_problem("s3cr3t-password") is None
    assert secret_problem("1234567") is not None
    assert "at least 8 characters" in (secret_problem("short") or "")
    assert secret_problem("  abc   \n  ") is not None


def test_masker_without_secrets_is_falsy_and_changes_nothing() -> None:
    masker = Masker([])
    assert not masker
    assert masker.mask("password: hunter2hunter2") == "password: hunter2hunter2"
    assert Masker(["hunter2hunter2"])


def test_plain_secret_is_masked_everywhere() -> None:
    masker = Masker(["hunter2hunter2"])
    assert masker.mask("a hunter2hunter2 b hunter2hunter2") == f"a {MASK} b {MASK}"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.b64encode(s.encode()).decode().rstrip("="),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
        lambda s: quote(s, safe=""),
        lambda s: quote_plus(s),
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    ],
)
def test_encoded_forms_are_masked_whole(encode: Callable[[str], str]) -> None:
    secret = 'p@ss/w+rd "é"?~~>'
    encoded = encode(secret)
    assert Masker([secret]).mask(f"<{encoded}>") == f"<{MASK}>"


def test_basic_auth_header_is_masked() -> None:
    header = "Authorization: Basic " + base64.b64encode(b"admin:correct-horse-battery").decode()
    masked = Masker(["correct-horse-battery"]).mask(header)
    assert MASK in masked
    assert stable_middle(b"admin:", b"correct-horse-battery", b"") not in masked


def test_multiline_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldY\nabc\n-----END KEY-----\n"
    masker = Masker([key])
    assert masker.mask("  QUJDREVGR0hJSktMTU5PUFFSU1RVVldY") == f"  {MASK}"
    assert masker.mask(key) == MASK
    assert masker.mask(json.dumps(key)) == f'"{MASK}"'
    # A line shorter than the minimum is not masked on its own: "abc" would blank unrelated text.
    assert masker.mask("abc") == "abc"


def test_short_forms_are_never_masked() -> None:
    assert all(len(form) >= MIN_SECRET_LENGTH for form in secret_forms("12345678\nab\n"))
    assert Masker(["abc"]).mask("abc abcd") == "abc abcd"


def test_longest_form_wins() -> None:
    masker = Masker(["secret-one", "secret-one-longer"])
    assert masker.mask("x secret-one-longer y") == f"x {MASK} y"


def test_long_secret_does_not_hit_recursion_limits() -> None:
    secret = "k" * 20_000
    assert Masker([secret]).mask(f"[{secret}]") == f"[{MASK}]"


@given(secret=secret_text, before=any_text, after=any_text)
def test_secret_never_survives(secret: str, before: str, after: str) -> None:
    masked = Masker([secret]).mask(before + secret + after)
    assert secret not in masked


@given(
    secret=secret_text, prefix=st.binary(max_size=12), suffix=st.binary(max_size=12), urlsafe=st.booleans()
)
def test_base64_middle_never_survives(secret: str, prefix: bytes, suffix: bytes, urlsafe: bool) -> None:
    middle = stable_middle(prefix, secret.encode(), suffix)
    encoded = base64.b64encode(prefix + secret.encode() + suffix).decode()
    if urlsafe:
        middle, encoded = (s.translate(str.maketrans("+/", "-_")) for s in (middle, encoded))
    assert middle in encoded
    assert middle not in Masker([secret]).mask(f"data: {encoded}\n")


@given(secret=secret_text, before=any_text, after=any_text)
def test_url_and_json_forms_never_survive(secret: str, before: str, after: str) -> None:
    masker = Masker([secret])
    for form in (quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]):
        assert form not in masker.mask(before + form + after)


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=MIN_SECRET_LENGTH),
    text=st.text(alphabet=st.characters(exclude_categories=["Cs", "L", "Nd"])),
)
def test_text_without_secrets_is_unchanged(secret: str, text: str) -> None:
    # Every form of a letters-only secret holds a letter or digit; this text holds none.
    assert Masker([secret]).mask(text) == text


@given(secret=secret_text, text=any_text)
def test_text_without_any_form_is_unchanged(secret: str, text: str) -> None:
    masker = Masker([secret])
    assume(not any(form in text for form in masker.forms))
    assert masker.mask(text) == text


@pytest.mark.parametrize("width", [76, 64])
def test_base64_wrapped_by_line_is_masked_line_by_line(width: int) -> None:
    """`base64` wraps at 76 columns and `openssl base64` at 64: each wrapped line of a long secret is masked
    (a last line shorter than the minimum is left alone, by design)."""
    secret = "correct-horse-battery-staple-" * 4
    encoded = base64.b64encode(secret.encode()).decode()
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    masked = Masker([secret]).mask("\n".join(lines)).split("\n")
    for original, shown in zip(lines, masked, strict=True):
        assert shown == (original if len(original) < MIN_SECRET_LENGTH else MASK)
