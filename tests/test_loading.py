"""Safe YAML loading with positions: what is refused, where, and what comes out."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from engine.errors import InvalidRunbook
from engine.loading import Mark, Positions, format_path, load, parse, read_text


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidRunbook) as error:
        parse(text, "rb.yml")
    return [str(p) for p in error.value.problems]


def test_values_come_out_plain_with_the_position_of_every_value_and_key() -> None:
    data, positions = parse("a: 1\nsteps:\n  - id: x\n    run: |\n      echo hi\n", "rb.yml")
    assert data == {"a": 1, "steps": [{"id": "x", "run": "echo hi\n"}]}
    assert positions.values[("steps", 0, "id")] == Mark(3, 9, "x", False)
    assert positions.keys[("steps", 0, "run")] == Mark(4, 5, "run", False)
    assert positions.values[("steps", 0, "run")].block is True
    assert positions.values[("a",)].source == "1"


def test_keys_are_read_as_written() -> None:
    # YAML 1.1 reads `on` and `yes` as booleans; a step's `on:` must stay a key named "on"
    data, _ = parse("on: nodes\nyes: 1\n'1': x\n", "rb.yml")
    assert data == {"on": "nodes", "yes": 1, "1": "x"}


def test_missing_path_falls_back_to_the_closest_located_ancestor() -> None:
    _, positions = parse("steps:\n  - id: x\n", "rb.yml")
    assert positions.of(("steps", 0, "title")) == positions.values[("steps", 0)]
    assert str(positions.problem(("steps", 0, "title"), "required")) == "rb.yml:2:5: steps[0].title: required"
    assert Positions("f").of(("nothing",)) == Mark(1, 1)


def test_format_path() -> None:
    assert format_path(("steps", 2, "run", "linux")) == "steps[2].run.linux"
    assert format_path((3,)) == "[3]"
    assert format_path(()) == ""


def test_every_refused_construct_is_reported_at_once_in_order() -> None:
    text = "a: &x 1\nb: *x\nc: !!binary aGk=\nd: 1\nd: 2\n<<: {e: 1}\n? [f]\n: 1\n"
    assert problems_of(text) == [
        "rb.yml:1:4: anchor &x is not allowed; runbooks are read as plain data",
        "rb.yml:2:4: alias *x is not allowed; repeat the value instead",
        "rb.yml:3:4: tag !!binary is not allowed; remove it (quote the value for a string)",
        "rb.yml:5:1: d: duplicate key 'd' (first defined at line 4)",
        "rb.yml:6:1: merge keys (<<) are not allowed; write the keys out",
        "rb.yml:7:3: mapping keys must be plain strings",
    ]


def test_tags_on_collections_are_refused_too() -> None:
    assert problems_of("a: !!python/object:os.system {x: 1}\nb: !!set {c}\n") == [
        "rb.yml:1:4: tag !!python/object:os.system is not allowed; remove it (quote the value for a string)",
        "rb.yml:2:4: tag !!set is not allowed; remove it (quote the value for a string)",
    ]


def test_a_tab_in_indentation_replaces_the_syntax_error_it_causes() -> None:
    assert problems_of("a:\n  b: 1\n\tc: 2\n") == [
        "rb.yml:3:1: tab in indentation; YAML indents with spaces only"
    ]


def test_tabs_inside_a_block_scalar_are_text() -> None:
    data, _ = parse("run: |\n  cat <<-EOF\n  \tindented\n  EOF\n", "rb.yml")
    assert data == {"run": "cat <<-EOF\n\tindented\nEOF\n"}


def test_syntax_error_says_where_the_unfinished_construct_began() -> None:
    assert problems_of("a: 1\nb: [1, 2\nc: 3\n") == [
        "rb.yml:3:2: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 2, column 4)"
    ]
    assert problems_of("a: b: c\n") == [
        "rb.yml:1:5: YAML syntax error: mapping values are not allowed in this context" + QUOTE_THE_VALUE
    ]


QUOTE_THE_VALUE = (
    "; a ': ' inside an unquoted value reads as a new key: quote the whole value "
    '(title: "Note: this") or write it as a block (|)'
)


@pytest.mark.parametrize("first", ["`", "@"])
def test_the_plain_value_traps_say_quote_it(first: str) -> None:
    """Issue 23: a backquote (or @) starting a value, and `: ` inside one, get the fix."""
    assert problems_of(f"title: Restart\nrun: {first}date{first} ok\n") == [
        "rb.yml:2:6: YAML syntax error: found character that cannot start any token "
        f"(while scanning for the next token started at line 2, column 6); an unquoted value cannot start "
        f"with {first!r}: quote the whole value ('{first}…')"
    ]
    assert problems_of("title: Note: this restarts\n")[0].endswith(QUOTE_THE_VALUE)


def test_several_documents_are_refused() -> None:
    assert problems_of("a: 1\n---\nb: 2\n") == [
        "rb.yml:2:1: YAML syntax error: but found another document "
        "(expected a single document in the stream started at line 1, column 1)"
    ]


def test_an_impossible_date_stays_text_and_a_real_one_is_a_date() -> None:
    data, _ = parse("a: 2001-13-45\nb: 2024-01-31\n", "rb.yml")
    assert data["a"] == "2001-13-45"
    assert str(data["b"]) == "2024-01-31" and not isinstance(data["b"], str)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "---\n..."])
def test_empty_documents(text: str, tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRunbook) as error:
        load(path, "rb.yml")
    assert [str(p) for p in error.value.problems] == ["rb.yml:1:1: the file is empty"]


def test_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_bytes(b"a: 1\nb: 2\nc: caf\xe9\n")
    with pytest.raises(InvalidRunbook) as error:
        read_text(path, "rb.yml")
    assert [str(p) for p in error.value.problems] == [
        "rb.yml:3:1: not UTF-8 (byte 0xe9); save the file as UTF-8"
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_bytes("\ufeffa: 1\n".encode())
    document = load(path)
    assert document.data == {"a": 1}
    assert document.positions.file == str(path)


def test_an_unreadable_file_has_no_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidRunbook) as error:
        load(tmp_path / "missing.yml", "missing.yml")
    assert [str(p) for p in error.value.problems] == ["missing.yml: cannot read: No such file or directory"]
    with pytest.raises(InvalidRunbook) as error:
        load(tmp_path, "dir")
    assert [str(p) for p in error.value.problems] == ["dir: cannot read: Is a directory"]


def _alias_bomb(levels: int) -> str:
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    """Nine levels of nine aliases expand to 387 million strings; refused with bounded memory (the walk
    that expanded it took 53 s and 1.8 GB at seven levels)."""
    text = _alias_bomb(9)
    tracemalloc.start()
    try:
        found = problems_of(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"peak {peak} bytes"
    aliases = [p for p in found if "alias *l" in p]
    assert len(aliases) == 81
    assert aliases[0] == "rb.yml:2:10: alias *l0 is not allowed; repeat the value instead"


def test_nesting_deeper_than_any_runbook_is_refused_before_it_is_walked() -> None:
    """500 levels crashed the loader (RecursionError, exit 70); the C parser alone stops at 1,000."""
    text = "steps: " + "[" * 500 + "]" * 500 + "\n"
    assert problems_of(text) == ["rb.yml:1:57: nested more than 50 levels deep; a runbook never needs that"]


def test_a_control_character_is_a_located_problem() -> None:
    assert problems_of('name: "a\x7fb"\n') == [
        "rb.yml:1:9: character U+007F is not allowed in YAML; remove it"
    ]
