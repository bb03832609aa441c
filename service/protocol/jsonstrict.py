"""Strict JSON: the only JSON reader for anything that arrives from outside.

`loads` accepts RFC 8259 JSON text with the I-JSON (RFC 7493) restrictions the
protocol relies on and refuses, as `Problem("malformed")`, everything else:
invalid UTF-8, duplicate member names at any depth, the non-standard literals
`NaN`, `Infinity` and `-Infinity`, numbers too large for a double, unpaired
surrogates, nesting deeper than `max_depth` and more than `max_members` object
members and array elements in total. It raises nothing but `Problem`.

Parsing is done by the standard library's C scanner. Nesting depth is measured
on the text before parsing (the scanner recurses), and only when the text holds
enough brackets to exceed the limit, so ordinary messages pay almost nothing.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, NoReturn

from service.protocol.problems import Problem

_STRUCTURE = b"[]{}"
_DELETE_ALL_BUT_NESTING = bytes(c for c in range(256) if c not in _STRUCTURE + b'"')
# For counting: every scalar byte becomes "0", JSON whitespace goes.
_SCALARS_TO_ZERO = bytes(c if c in _STRUCTURE + b'",' else ord("0") for c in range(256))
_JSON_WHITESPACE = b" \t\n\r"
# A string once escaped backslashes and quotes are gone; possessive, so linear.
_STRING_RE = re.compile(rb'"[^"]*+"')
_NESTING_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_EMPTY_CONTAINER_RE = re.compile(rb"\[\]|\{\}")
# An escaped UTF-16 surrogate; only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")

# Member names are the sender's text: refusals quote at most this much of one.
_NAME_SHOWN = 64

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _malformed(detail: str) -> NoReturn:
    raise Problem("malformed", detail)


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                _malformed(f"duplicate member name {name[:_NAME_SHOWN]!r}")
            seen.add(name)
    return obj


def _refuse_constant(name: str) -> NoReturn:
    _malformed(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _malformed(f"number {text[:40]} is too large for a double")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_from_pairs,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)


def _brackets(raw: bytes) -> bytes:
    """The brackets of `raw` outside strings; exact for valid JSON.

    Escaped backslashes and quotes go first, so every remaining quote opens or
    closes a string, in strict alternation. Deleting two adjacent quotes then
    never removes structure (it drops an empty string or joins two strings with
    nothing between them), which disposes of most strings at memchr speed.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = raw.translate(None, _DELETE_ALL_BUT_NESTING).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING_RE.sub(b"", skeleton)
    return skeleton


def _nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw`, in one pass at C speed."""
    steps = _brackets(raw).translate(_NESTING_STEPS)  # +1 per opening, -1 per closing
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def _member_count(raw: bytes) -> int:
    """Object members plus array elements: commas plus non-empty containers."""
    skeleton = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = _STRING_RE.sub(b"0", skeleton.translate(_SCALARS_TO_ZERO, _JSON_WHITESPACE))
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    empty = len(_EMPTY_CONTAINER_RE.findall(skeleton))
    return skeleton.count(b",") + containers - empty


def _decode_text(data: bytes | str) -> tuple[bytes, str]:
    if isinstance(data, str):
        try:
            return data.encode("utf-8"), data
        except UnicodeEncodeError:
            raise Problem("malformed", "text contains an unpaired surrogate") from None
    raw = _as_bytes(data)
    try:
        return raw, str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise Problem("malformed", f"invalid UTF-8 at byte {exc.start}") from None


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise Problem("malformed", "JSON text must be bytes or str")


def _check_surrogates(raw: bytes, value: Any) -> None:
    if _SURROGATE_ESCAPE_RE.search(raw) is None:
        return
    try:
        _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        _malformed("a string contains an unpaired surrogate")


def loads(data: bytes | str, *, max_depth: int = 32, max_members: int = 2_000_000) -> Any:
    """Parse strict JSON text; every refusal is `Problem("malformed")`."""
    raw, text = _decode_text(data)
    if raw.count(b"[") + raw.count(b"{") > max_depth and _nesting_depth(raw) > max_depth:
        _malformed(f"JSON nesting deeper than {max_depth}")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise Problem("malformed", f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise Problem("malformed", "JSON nesting too deep") from None
    except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
        raise Problem("malformed", f"invalid JSON: {exc}") from None
    if (len(raw) - 1) // 2 > max_members and _member_count(raw) > max_members:
        _malformed(f"JSON text has more than {max_members} members and elements")
    _check_surrogates(raw, value)
    return value


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON: no whitespace, non-ASCII kept as UTF-8, no NaN/Infinity."""
    return _ENCODER.encode(obj).encode("utf-8")


def check_bounds(value: Any, *, max_depth: int, max_members: int) -> None:
    """Refuse an already parsed value nested deeper than `max_depth` or with more than
    `max_members` members and elements in all, without recursion. Raises ValueError."""
    members = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            children = node.values() if isinstance(node, dict) else node
            members += len(node)
            if members > max_members:
                raise ValueError(f"more than {max_members} members and elements")
            stack.extend((child, depth) for child in children)
