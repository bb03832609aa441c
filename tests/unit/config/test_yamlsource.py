"""YAML with line numbers: values, the line of every path, and what is refused."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config.yamlsource import YamlSourceError, parse_yaml, render_loc

TEXT = """\
node:
  party: "KZ:MIA"
partners:
  - party: "UZ:MIA"
    rules:
      - id: a
        types: [x, y]
      - id: b
agreements:
  - {id: kz-uz-2019, signed: 2019-04-15}
"""


def issues(text: str) -> list[tuple[int, str]]:
    with pytest.raises(YamlSourceError) as info:
        parse_yaml(text)
    return [(i.line, i.message) for i in info.value.issues]


def test_values_are_plain_python_values() -> None:
    doc = parse_yaml(TEXT)
    assert doc.data["partners"][0]["rules"][0]["types"] == ["x", "y"]
    assert doc.data["agreements"][0]["signed"] == date(2019, 4, 15)


def test_mapping_keys_carry_their_line() -> None:
    doc = parse_yaml(TEXT)
    assert doc.line(("node", "party")) == 2
    assert doc.line(("partners", 0, "rules", 1, "id")) == 8


def test_sequence_items_carry_their_line() -> None:
    doc = parse_yaml(TEXT)
    assert doc.line(("partners", 0, "rules", 1)) == 8
    assert doc.line(("agreements", 0, "signed")) == 10


def test_flow_sequence_items_carry_their_line() -> None:
    doc = parse_yaml(TEXT)
    assert doc.line(("partners", 0, "rules", 0, "types", 1)) == 7


def test_unknown_path_falls_back_to_its_nearest_ancestor() -> None:
    doc = parse_yaml(TEXT)
    assert doc.line(("partners", 0, "rules", 1, "direction")) == 8
    assert doc.line(("nowhere",)) == 1


def test_duplicate_key_is_refused_naming_both_lines() -> None:
    assert issues("a: 1\nb: 2\na: 3\n") == [(3, "duplicate key 'a' (first given on line 1)")]


def test_merge_key_is_refused() -> None:
    text = "base: &b {x: 1}\nother:\n  <<: *b\n"
    assert issues(text) == [(3, "merge keys (<<) are not supported: write the mapping out")]


def test_recursive_alias_is_refused() -> None:
    assert issues("a: &x [1, *x]\n") == [(1, "a recursive alias refers to itself")]


def test_exponential_alias_expansion_is_bounded() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for n in range(ord("b"), ord("k")):
        prev = chr(n - 1)
        text += f"{chr(n)}: &{chr(n)} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    found = issues(text)
    assert len(found) == 1
    assert "more than 1000000 values" in found[0][1]


def test_non_string_key_is_refused() -> None:
    assert issues("1: a\n") == [(1, "a mapping key must be a string, not '1'")]


def test_python_object_tag_is_refused() -> None:
    found = issues("a: !!python/object:os.system echo\n")
    assert found[0][0] == 1
    assert "could not determine a constructor" in found[0][1]


def test_syntax_error_names_its_line() -> None:
    found = issues("a: 1\nb: [1, 2\nc: 3\n")
    assert len(found) == 1
    assert found[0][0] == 3


def test_empty_document_is_refused() -> None:
    assert issues("# nothing\n") == [(1, "the file holds no YAML document")]


def test_several_documents_are_refused() -> None:
    found = issues("a: 1\n---\nb: 2\n")
    assert "expected a single document" in found[0][1]


def test_render_loc_writes_indices_in_brackets() -> None:
    assert render_loc(("partners", 0, "rules", 12, "id")) == "partners[0].rules[12].id"
    assert render_loc(()) == ""


@settings(max_examples=300)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!<>,'\"\n #|0123456789.")), max_size=60)
)
def test_arbitrary_text_parses_or_raises_only_yaml_source_error(text: str) -> None:
    issues: list[int] = []
    try:
        parse_yaml(text)
    except YamlSourceError as exc:
        issues = [issue.line for issue in exc.issues] or [0]
    assert all(line >= 1 for line in issues)
