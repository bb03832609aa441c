"""RFC 8785 JSON Canonicalization Scheme (JCS).

The audit log hashes each entry's canonical form, so any node, in any language,
that holds the same entry computes the same leaf hash. `canonicalize` is the
reference (the `rfc8785` package); `canonicalize_fast` is the one fast path, used
wherever many values are serialized (the log's appender, the offline verifier).
"""

from __future__ import annotations

import json
from typing import Any, Final

import rfc8785

_MAX_EXACT: Final = 2**53 - 1
_FIRST_SUPPLEMENTARY: Final = "\U00010000"
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def canonicalize(obj: Any) -> bytes:
    """The JCS serialization of `obj` as UTF-8 bytes.

    Raises `ValueError` for values JCS cannot represent: NaN and infinities,
    integers outside the IEEE 754 double's exact range (+/- 2**53 - 1), strings
    with unpaired surrogates, non-string object keys and non-JSON types.
    """
    data: bytes = rfc8785.dumps(obj)
    return data


def has_plain_numbers(obj: Any) -> bool:
    """True when `obj` holds no float, only integers within +/- 2**53 - 1, and only
    string member names (so the standard encoder writes its numbers as JCS does)."""
    if obj is None or isinstance(obj, str | bool):
        return True
    if isinstance(obj, int):
        return -_MAX_EXACT <= obj <= _MAX_EXACT
    if isinstance(obj, dict):
        return all(isinstance(k, str) and has_plain_numbers(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return all(has_plain_numbers(v) for v in obj)
    return False


def canonicalize_fast(obj: Any, *, numbers_checked: bool = False) -> bytes:
    """`canonicalize`, taking the standard library's encoder where it gives the same bytes.

    The sorted, compact encoding with `ensure_ascii=False` is exactly JCS when the value
    has plain numbers (`has_plain_numbers`) and its text has no character beyond U+FFFF:
    RFC 8785 escapes only `"`, `\\` and control characters, with lowercase hex, as `json`
    does, and without supplementary characters member names sort the same by UTF-16 code
    units and by code points. A lone surrogate cannot be encoded as UTF-8 and is refused,
    as the reference refuses it. A caller whose JSON decoder
    already saw no float and no long integer passes `numbers_checked=True` to skip the walk.

    Raises `ValueError` where `canonicalize` does.
    """
    if numbers_checked or has_plain_numbers(obj):
        text = _encode(obj)
        if text.isascii():
            return text.encode("ascii")
        if max(text) < _FIRST_SUPPLEMENTARY:
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    "a string holds a lone surrogate, which JCS cannot encode"
                ) from exc
    return canonicalize(obj)
