"""Message ids: UUID version 7 (RFC 9562 section 5.7).

A version 7 UUID starts with the Unix time in milliseconds, so ids sort roughly
by creation time and index well; the remaining 74 bits are random.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_MAX_UNIX_MS = (1 << 48) - 1
_RANDOM_BYTES = 10  # 80 bits drawn, 74 used (12 for rand_a, 62 for rand_b)
_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def new_message_id(now: float, rand: Callable[[int], bytes] = os.urandom) -> str:
    """A lowercase hyphenated UUIDv7 for Unix time `now` (seconds)."""
    unix_ms = int(now * 1000)
    if not 0 <= unix_ms <= _MAX_UNIX_MS:
        raise ValueError("time is outside the UUIDv7 range")
    random_bytes = rand(_RANDOM_BYTES)
    if len(random_bytes) != _RANDOM_BYTES:
        raise ValueError(f"random source returned {len(random_bytes)} bytes, not {_RANDOM_BYTES}")
    bits = int.from_bytes(random_bytes, "big")
    rand_a = bits >> 68  # top 12 bits
    rand_b = bits & ((1 << 62) - 1)  # low 62 bits
    value = (unix_ms << 80) | _VERSION_7 | (rand_a << 64) | _VARIANT_RFC | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
