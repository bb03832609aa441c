"""RFC 8785 JSON Canonicalization Scheme (JCS).

The audit log hashes each entry's canonical form, so any node, in any language,
that holds the same entry computes the same leaf hash.
"""

from __future__ import annotations

from typing import Any

import rfc8785


def canonicalize(obj: Any) -> bytes:
    """The JCS serialization of `obj` as UTF-8 bytes.

    Raises `ValueError` for values JCS cannot represent: NaN and infinities,
    integers outside the IEEE 754 double's exact range (+/- 2**53 - 1), strings
    with unpaired surrogates, non-string object keys and non-JSON types.
    """
    data: bytes = rfc8785.dumps(obj)
    return data
