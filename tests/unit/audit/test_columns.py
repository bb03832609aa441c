"""The search columns of an entry checked against the entry (service.audit.columns)."""

from __future__ import annotations

from typing import Any

import pytest

from service.audit.columns import SEARCH_COLUMNS, column_mismatches
from service.clock import rfc3339

TIME = 1_795_000_000.123456
ENTRY: dict[str, Any] = {
    "index": 8,
    "time": rfc3339(TIME),
    "event": "message.accepted",
    "party": "UZ:MIA",
    "message_id": "0b7e5d9a-1c2f-4e3d-8a5b-6c7d8e9f0a1b",
    "type": "statistics.migration-flows",
    "outcome": "accepted",
    "code": None,
}
COLUMNS: dict[str, Any] = {name: ENTRY[name] for name in SEARCH_COLUMNS if name != "time"} | {
    "time": TIME
}


def test_columns_copied_from_the_entry_match() -> None:
    assert column_mismatches(COLUMNS, ENTRY) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event", "message.refused"),
        ("party", None),
        ("message_id", "00000000-0000-4000-8000-000000000000"),
        ("type", "readmission.request"),
        ("outcome", "refused"),
        ("code", "schema"),
        ("time", TIME + 1),
        ("time", TIME + 0.001),
        ("time", rfc3339(TIME)),
        ("time", True),
        ("party", 7),
    ],
)
def test_a_changed_column_is_named(name: str, value: Any) -> None:
    assert column_mismatches(COLUMNS | {name: value}, ENTRY) == [name]


def test_a_time_within_the_same_millisecond_matches() -> None:
    # The entry's time has milliseconds: the column is the instant it was written from.
    assert column_mismatches(COLUMNS | {"time": TIME + 0.0001}, ENTRY) == []


def test_a_missing_column_is_named() -> None:
    columns = {k: v for k, v in COLUMNS.items() if k != "code"}
    assert column_mismatches(columns, ENTRY) == ["code"]


def test_an_impossible_time_is_a_mismatch_not_an_error() -> None:
    assert column_mismatches(COLUMNS | {"time": 1e300}, ENTRY) == ["time"]
