"""The export reader's canonical form agrees with the rfc8785 package on any JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from service.audit.offline import EntryReader, ExportLineError

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


def export_line(body: dict[str, Any], leaf_data: bytes) -> str:
    return json.dumps(
        {"index": 0, "leaf_data": base64.b64encode(leaf_data).decode(), "entry": body}
    )


def jcs(body: dict[str, Any]) -> bytes | None:
    try:
        return bytes(rfc8785.dumps(body))
    except rfc8785.CanonicalizationError:
        return None


@settings(max_examples=400, deadline=None)
@given(VALUES, st.text(max_size=4))
def test_reader_accepts_exactly_the_rfc8785_form(value: Any, name: str) -> None:
    body = {"index": 0, name or "value": value}
    canonical, python_form = (
        jcs(body),
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        ),
    )
    for candidate in {canonical, python_form} - {None}:
        assert candidate is not None
        line = export_line(body, candidate)
        if candidate == canonical:
            assert EntryReader().read(line) == (0, candidate)
        else:
            with pytest.raises(ExportLineError):
                EntryReader().read(line)


def test_supplementary_plane_keys_sort_by_utf16_units() -> None:
    body = {"index": 0, "\U0001f600": 1, "\ufb01": 2}
    canonical = rfc8785.dumps(body)
    assert canonical.index("\ufb01".encode()) > canonical.index("\U0001f600".encode())
    assert EntryReader().read(export_line(body, canonical)) == (0, canonical)


def test_float_is_written_as_ecmascript_number() -> None:
    line = export_line({"index": 0, "ratio": 1.0}, b'{"index":0,"ratio":1.0}')
    with pytest.raises(ExportLineError, match="RFC 8785"):
        EntryReader().read(line)


def test_integer_beyond_double_precision_has_no_canonical_form() -> None:
    line = export_line({"index": 0, "n": 2**53}, b'{"index":0,"n":9007199254740992}')
    with pytest.raises(ExportLineError, match="no RFC 8785 form"):
        EntryReader().read(line)


def test_lone_surrogate_has_no_canonical_form() -> None:
    line = '{"index":0,"leaf_data":"e30=","entry":{"index":0,"s":"caf\\u00e9\\ud800"}}'
    with pytest.raises(ExportLineError, match="surrogate"):
        EntryReader().read(line)
