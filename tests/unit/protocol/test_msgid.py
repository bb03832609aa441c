"""UUIDv7 message ids."""

from __future__ import annotations

import re
import uuid

import pytest

from service.protocol.envelope import is_message_id
from service.protocol.msgid import new_message_id

UUID7_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_new_message_id_matches_rfc9562_appendix_a6_example() -> None:
    # Example UUIDv7: 2022-02-22 19:22:22 UTC, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
    random_bits = (0xCC3 << 68) | 0x18C4DC0C0C07398F
    assert (
        new_message_id(1645557742.0, lambda n: random_bits.to_bytes(n, "big"))
        == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
    )


def test_new_message_id_is_a_lowercase_version_7_uuid() -> None:
    value = new_message_id(1_764_000_000.5)
    assert UUID7_RE.fullmatch(value)
    assert uuid.UUID(value).version == 7
    assert is_message_id(value)


def test_new_message_id_starts_with_the_unix_time_in_milliseconds() -> None:
    value = new_message_id(1_764_000_000.25)
    assert int(value.replace("-", "")[:12], 16) == 1_764_000_000_250


def test_new_message_id_sorts_by_time() -> None:
    times = [1_764_000_000.0, 1_764_000_000.001, 1_764_000_001.0, 1_800_000_000.0]
    ids = [new_message_id(t, lambda n: b"\xff" * n) for t in times[:2]] + [
        new_message_id(t, lambda n: b"\x00" * n) for t in times[2:]
    ]
    assert ids == sorted(ids)


def test_new_message_id_uses_the_random_source() -> None:
    assert new_message_id(0.0, lambda n: b"\x00" * n) != new_message_id(0.0, lambda n: b"\x01" * n)


def test_new_message_id_refuses_a_short_random_source() -> None:
    with pytest.raises(ValueError, match="random source"):
        new_message_id(1.0, lambda n: b"\x00" * (n - 1))


@pytest.mark.parametrize("now", [-1.0, 2.0**48])
def test_new_message_id_refuses_times_outside_the_48_bit_range(now: float) -> None:
    with pytest.raises(ValueError, match="range"):
        new_message_id(now)
