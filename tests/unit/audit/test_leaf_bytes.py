"""The log's fast leaf serialization is byte-for-byte RFC 8785."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from service.audit.entries import AuditEvent, entry_dict
from service.audit.store import leaf_bytes
from service.protocol.canonical import canonicalize_fast

texts = st.text(max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _jcs(value: Any) -> bytes | None:
    try:
        return bytes(rfc8785.dumps(value))
    except (ValueError, rfc8785.CanonicalizationError):
        return None


@given(json_values)
def test_canonicalize_fast_equals_the_reference(value: Any) -> None:
    expected = _jcs(value)
    if expected is not None:
        assert canonicalize_fast(value) == expected


@given(
    texts,
    st.dictionaries(
        texts, st.none() | st.integers(0, 10**6) | texts | st.lists(texts, max_size=3), max_size=4
    ),
)
def test_leaf_bytes_equals_the_reference(party: str, detail: dict[str, Any]) -> None:
    event = AuditEvent("message.refused", "refused", party=party, code="malformed", detail=detail)
    entry = entry_dict(event, index=7, time=1_795_000_000.25, node="KZ:MIA")
    expected = _jcs(entry)
    if expected is not None:
        assert leaf_bytes(entry) == expected


def test_leaf_bytes_of_a_float_detail_equals_the_reference() -> None:
    entry = entry_dict(
        AuditEvent("delivery.attempt", "retry", detail={"seconds": 0.1, "é": 1e21}),
        index=1,
        time=0.0,
        node="KZ:MIA",
    )
    assert leaf_bytes(entry) == rfc8785.dumps(entry)
