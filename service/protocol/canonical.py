"""RFC 8785 JSON Canonicalization Scheme (JCS).

The audit log hashes each entry's canonical form, so any node, in any language,
that holds the same entry computes the same leaf hash.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_EXACT = 2**53 - 1


def canonicalize(obj: Any) -> bytes:
    """The JCS serialization of `obj` as UTF-8 bytes.

    Raises `ValueError` for values JCS cannot represent: NaN and infinities,
    integers outside the IEEE 754 double's exact range (+/- 2**53 - 1), strings
    with unpaired surrogates, non-string object keys and non-JSON types.
    """
    data: bytes = rfc8785.dumps(obj)
    return data


def is_simple(obj: Any) -> bool:
    """True when JCS and sorted, compact `json.dumps` agree byte for byte: only
    ASCII-free-of-surrogates strings, ASCII keys, booleans, None, and exact integers."""
    if obj is None or isinstance(obj, bool):
        return True
    if isinstance(obj, int):
        return -_MAX_EXACT <= obj <= _MAX_EXACT
    if isinstance(obj, str):
        return obj.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and k.isascii() and is_simple(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return all(is_simple(v) for v in obj)
    return False


def canonicalize_fast(obj: Any) -> bytes:
    """`canonicalize`, taking the standard library's encoder where it gives the same bytes.

    For strings, integers, booleans, null, and objects with ASCII member names, the
    sorted compact encoding with `ensure_ascii=False` is exactly JCS (RFC 8785 escapes
    only `"`, `\\` and control characters, with lowercase hex, as `json` does; ASCII
    names sort the same by UTF-16 code units and by code points). Anything else (floats,
    non-ASCII names) goes through the reference implementation.
    """
    if is_simple(obj):
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return canonicalize(obj)
