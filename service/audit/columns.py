"""The search columns of an audit entry, and their check against the entry itself.

`audit_entries` keeps, beside each leaf, a few of its members as columns so that
search can use indices: `event`, `party`, `message_id`, `type`, `outcome`, `code` and
`time` (Unix seconds). Only the leaf is hashed into the tree and signed; the columns
are a copy anyone with write access to the database could change without touching
the tree. So nothing trusts them alone: search checks every row it returns against
its leaf, the export carries them so `migex audit verify` checks every one, and
`migex audit prove` checks the leaves it is given against what it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.clock import rfc3339

# Members of the entry copied into a column of the same name.
TEXT_COLUMNS = ("event", "party", "message_id", "type", "outcome", "code")
SEARCH_COLUMNS = (*TEXT_COLUMNS, "time")


def column_mismatches(columns: Mapping[str, Any], entry: Mapping[str, Any]) -> list[str]:
    """The names of the search columns whose value differs from the entry's own.

    `time` is the Unix seconds the entry's `time` member was written from, so it must
    give back exactly that text. A column missing from `columns` counts as differing.
    """
    wrong = [
        name
        for name in TEXT_COLUMNS
        if name not in columns or columns[name] != entry.get(name) or not _plain(columns[name])
    ]
    if not _same_time(columns.get("time"), entry.get("time")):
        wrong.append("time")
    return wrong


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str)


def _same_time(seconds: object, text: object) -> bool:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return False
    try:
        return rfc3339(float(seconds)) == text
    except (OverflowError, OSError, ValueError):
        return False


def row_columns(row: Any) -> dict[str, Any]:
    """The search columns of an `audit_entries` row, as the export carries them."""
    columns: dict[str, Any] = {name: getattr(row, name) for name in TEXT_COLUMNS}
    columns["time"] = float(row.time)
    return columns
