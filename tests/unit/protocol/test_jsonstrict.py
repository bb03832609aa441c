"""Strict JSON reading and compact writing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.protocol import jsonstrict
from service.protocol.problems import Problem

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)

# Strings full of the characters a structure scan could mistake for structure.
TRICKY_TEXT = st.text(alphabet='"\\[]{},: \nab\u00e9')
TRICKY_VALUES = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(TRICKY_TEXT, children, max_size=4)
    ),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _members(value: Any) -> int:
    if isinstance(value, list):
        return len(value) + sum(map(_members, value))
    if isinstance(value, dict):
        return len(value) + sum(map(_members, value.values()))
    return 0


def _outcome(data: bytes | str, **limits: int) -> str:
    """ "ok", or the code of the Problem that `loads` raised."""
    try:
        jsonstrict.loads(data, **limits)
    except Problem as exc:
        return exc.code
    return "ok"


def _refusal(data: bytes | str, **limits: int) -> str:
    with pytest.raises(Problem) as caught:
        jsonstrict.loads(data, **limits)
    assert caught.value.code == "malformed"
    return caught.value.detail


def test_loads_parses_an_object_from_bytes() -> None:
    assert jsonstrict.loads(b'{"a": [1, 2.5, "x", true, null]}') == {"a": [1, 2.5, "x", True, None]}


def test_loads_parses_str_input() -> None:
    assert jsonstrict.loads('{"name":"Ақмарал"}') == {"name": "Ақмарал"}


def test_loads_parses_a_top_level_scalar() -> None:
    assert jsonstrict.loads(b" 42 ") == 42


def test_loads_refuses_invalid_utf8() -> None:
    assert "UTF-8" in _refusal(b'{"a":"\xff"}')


def test_loads_refuses_overlong_utf8_encoding() -> None:
    assert "UTF-8" in _refusal(b'"\xc0\xaf"')


def test_loads_refuses_a_utf8_byte_order_mark() -> None:
    _refusal(b"\xef\xbb\xbf{}")


@pytest.mark.parametrize(
    "text", [b"", b" ", b"{", b"{'a':1}", b'{"a":1,}', b"[1 2]", b"01", b'"a\nb"', b"{} {}"]
)
def test_loads_refuses_invalid_json(text: bytes) -> None:
    assert "invalid JSON" in _refusal(text)


def test_loads_refuses_a_duplicate_member_naming_it() -> None:
    assert "'iat'" in _refusal(b'{"iat":1,"iat":2}')


def test_loads_refuses_a_duplicate_member_nested_deep() -> None:
    text = b'{"a":[{"b":{"c":[{"d":1,"e":2,"d":3}]}}]}'
    assert "'d'" in _refusal(text)


def test_loads_refuses_duplicates_that_differ_only_by_escaping() -> None:
    assert "'a'" in _refusal(b'{"a":1,"\\u0061":2}')


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_loads_refuses_non_finite_literals(literal: bytes) -> None:
    assert literal.decode() in _refusal(b'{"x":' + literal + b"}")


def test_loads_refuses_a_number_that_overflows_a_double() -> None:
    assert "too large" in _refusal(b"[1e400]")


def test_loads_refuses_an_integer_beyond_the_digit_limit() -> None:
    _refusal(b"1" * 5000)


def test_loads_refuses_an_escaped_lone_surrogate() -> None:
    assert "surrogate" in _refusal(b'{"a":"\\ud800"}')


def test_loads_refuses_a_lone_surrogate_in_a_member_name() -> None:
    assert "surrogate" in _refusal(b'{"\\udc00":1}')


def test_loads_refuses_a_lone_surrogate_in_str_input() -> None:
    assert "surrogate" in _refusal('"\ud800"')


def test_loads_accepts_an_escaped_surrogate_pair() -> None:
    assert jsonstrict.loads(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_loads_accepts_nesting_at_max_depth() -> None:
    assert jsonstrict.loads(b"[" * 32 + b"]" * 32, max_depth=32) is not None


def test_loads_refuses_nesting_beyond_max_depth() -> None:
    assert "deeper than 32" in _refusal(b"[" * 33 + b"]" * 33, max_depth=32)


def test_loads_counts_objects_and_arrays_together_for_depth() -> None:
    assert "deeper than 4" in _refusal(b'{"a":[{"b":[{}]}]}', max_depth=4)


def test_loads_ignores_brackets_inside_strings_for_depth() -> None:
    text = b'[["[[[[[[", "\\"[[[[", "\\\\", "]]]]]]]]]]]]"]]'
    assert jsonstrict.loads(text, max_depth=2) == [["[[[[[[", '"[[[[', "\\", "]]]]]]]]]]]]"]]


class _NeverScan:
    """Stands in for the recursive C scanner: deep text must be refused before it."""

    def decode(self, text: str) -> Any:
        raise AssertionError("the scanner was reached")


@pytest.mark.parametrize(
    "text",
    [b"[" * (1 << 20), b'{"a":' * 200_000 + b"1" + b"}" * 200_000],
    ids=["a-mebibyte-of-open-brackets", "deeply-nested-objects"],
)
def test_deep_text_is_refused_by_the_linear_prescan_before_the_scanner(
    text: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonstrict, "_DECODER", _NeverScan())
    assert "deeper than 32" in _refusal(text)


def test_loads_accepts_members_at_the_limit() -> None:
    assert jsonstrict.loads(b'[1,{"a":2,"b":[]},[3]]', max_members=6) == [1, {"a": 2, "b": []}, [3]]


def test_loads_refuses_members_over_the_limit() -> None:
    assert "more than 5" in _refusal(b'[1,{"a":2,"b":[]},[3]]', max_members=5)


def test_loads_counts_elements_not_commas_inside_strings() -> None:
    assert jsonstrict.loads(b'[",,,,", "[]", {"{}": ","}]', max_members=4) == [
        ",,,,",
        "[]",
        {"{}": ","},
    ]


def test_loads_parses_a_mebibyte_of_100k_small_objects() -> None:
    # Its speed is part of the inbound path's, measured by the load benchmark.
    data = jsonstrict.dumps([{"n": i % 1000} for i in range(100_000)])
    assert len(data) <= 1 << 20
    value = jsonstrict.loads(data)
    assert len(value) == 100_000
    assert value[999] == {"n": 999}


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_loads_raises_only_problem_for_arbitrary_bytes(data: bytes) -> None:
    assert _outcome(data) in {"ok", "malformed"}


@settings(max_examples=300)
@given(st.text(alphabet='[]{}",:\\ 0123456789.eE+-truefalsnul\ud800\udc00é', max_size=80))
def test_loads_raises_only_problem_for_json_like_text(text: str) -> None:
    assert _outcome(text, max_depth=3, max_members=4) in {"ok", "malformed"}


@settings(max_examples=300)
@given(JSON_VALUES)
def test_loads_round_trips_dumps(value: Any) -> None:
    assert jsonstrict.loads(jsonstrict.dumps(value)) == value


@settings(max_examples=300)
@given(JSON_VALUES | TRICKY_VALUES, st.booleans())
def test_loads_applies_depth_and_member_limits_exactly(value: Any, pretty: bool) -> None:
    data = json.dumps(value, indent=1 if pretty else None).encode()
    depth, members = _depth(value), _members(value)
    assert jsonstrict.loads(data, max_depth=depth, max_members=members) == value
    if depth:
        with pytest.raises(Problem):
            jsonstrict.loads(data, max_depth=depth - 1)
    if members:
        with pytest.raises(Problem):
            jsonstrict.loads(data, max_members=members - 1)


def test_dumps_is_compact_utf8_in_insertion_order() -> None:
    assert jsonstrict.dumps({"b": 1, "a": ["é", None]}) == '{"b":1,"a":["é",null]}'.encode()


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        jsonstrict.dumps({"x": math.nan})


def test_loads_quotes_at_most_64_characters_of_a_duplicate_name() -> None:
    name = "n" * 10_000
    detail = _refusal(f'{{"{name}":1,"{name}":2}}'.encode())
    assert f"'{'n' * 64}'" in detail
    assert "n" * 65 not in detail
