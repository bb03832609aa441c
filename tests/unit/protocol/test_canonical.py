"""RFC 8785 JSON canonicalization."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from service.protocol import jsonstrict
from service.protocol.canonical import canonicalize, canonicalize_fast, has_plain_numbers

# RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# RFC 8785 section 3.2.2 input and section 3.2.4 output.
RFC8785_EXAMPLE_INPUT = rb"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC8785_EXAMPLE_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()

# RFC 8785 section 3.2.3: property sorting by UTF-16 code units.
RFC8785_SORTING_INPUT = rb"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC8785_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_canonicalize_serializes_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonicalize(value) == expected.encode()


def test_canonicalize_matches_the_rfc8785_example() -> None:
    assert canonicalize(jsonstrict.loads(RFC8785_EXAMPLE_INPUT)) == RFC8785_EXAMPLE_OUTPUT


def test_canonicalize_sorts_members_by_utf16_code_units() -> None:
    assert canonicalize(jsonstrict.loads(RFC8785_SORTING_INPUT)) == RFC8785_SORTING_OUTPUT


def test_canonicalize_sorts_nested_objects_and_keeps_array_order() -> None:
    assert (
        canonicalize({"b": [3, {"z": 1, "a": 2}], "a": None}) == b'{"a":null,"b":[3,{"a":2,"z":1}]}'
    )


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 2**53, -(2**53), {1: "a"}, object(), "\ud800"]
)
def test_canonicalize_refuses_values_jcs_cannot_represent(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case raises its own subclass
        canonicalize(value)


# -- the one fast path against the reference ------------------------------------------

EDGE_VALUES = [
    {"n": 2**53 - 1, "m": -(2**53) + 1},
    {"n": 2**53},
    {"n": -(2**60)},
    {"f": 1e21, "g": 0.1, "h": -0.0},
    {"é": 1, "e": 2, "\u20ac": 3, "\ufb33": 4},
    {"\U0001f600": 1, "\ufb33": 2},
    {"k": "\U0001f600 grinning"},
    {"k": "\ud800"},
    {"\udc00": 1},
    {"k": '\u0000\u001f\u007f\u2028"\\/'},
    {"nested": [{"b": 1, "a": [True, False, None]}, "\u00f6"]},
    {1: "int key"},
    {"t": (1, 2)},
    {"x": object()},
]


def _reference(value: Any) -> bytes | type[ValueError]:
    try:
        return canonicalize(value)
    except ValueError:
        return ValueError


@pytest.mark.parametrize("value", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_the_fast_path_agrees_with_the_reference_on_edge_cases(value: Any) -> None:
    expected = _reference(value)
    if expected is ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 - the reference's own error
            canonicalize_fast(value)
    else:
        assert canonicalize_fast(value) == expected


@pytest.mark.parametrize(
    "value",
    [v for v in EDGE_VALUES if has_plain_numbers(v)],
    ids=lambda v: repr(v)[:20],
)
def test_numbers_checked_changes_nothing_when_the_numbers_are_plain(value: Any) -> None:
    expected = _reference(value)
    if expected is ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 - the reference's own error
            canonicalize_fast(value, numbers_checked=True)
    else:
        assert canonicalize_fast(value, numbers_checked=True) == expected


def test_plain_numbers_exclude_floats_long_integers_and_other_keys() -> None:
    assert has_plain_numbers({"a": [1, "x", None, True]})
    assert not has_plain_numbers({"a": 0.5})
    assert not has_plain_numbers({"a": 2**53})
    assert not has_plain_numbers({1: 1})
