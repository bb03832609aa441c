"""Read side of the audit log: pages, search with cursors, export in constant memory.

The leaf is the entry; the search columns beside it are only an index (see
`service.audit.columns`), so every row search returns is checked against its leaf,
and the export carries the columns for `migex audit verify` to check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from service.audit.columns import SEARCH_COLUMNS, column_mismatches, row_columns
from service.db.tables import audit_entries
from service.protocol.b64 import b64_encode
from service.protocol.problems import Problem

EXPORT_CHUNK = 2000
log = logging.getLogger("migex.audit")


def entry_item(idx: int, leaf_data: bytes) -> dict[str, Any]:
    entry = json.loads(leaf_data)
    if entry.get("index") != idx:
        raise inconsistent({idx: ["index"]})
    return {"index": idx, "leaf_data": b64_encode(leaf_data), "entry": entry}


def inconsistent(wrong: dict[int, list[str]]) -> Problem:
    """The answer when stored rows disagree with their own leaves: the database was
    changed outside the node. Nothing is answered from an index that lies."""
    listed = "; ".join(f"entry {i}: {', '.join(names)}" for i, names in sorted(wrong.items()))
    log.error("audit search columns differ from the signed entries: %s", listed)
    return Problem(
        "audit-inconsistent",
        f"stored search columns differ from the signed entries ({listed}); "
        "check an export with `migex audit verify`",
    )


def page(conn: Connection, start: int, end: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(audit_entries.c.idx, audit_entries.c.leaf_data)
        .where(audit_entries.c.idx >= start, audit_entries.c.idx < end)
        .order_by(audit_entries.c.idx)
    )
    return [entry_item(int(r.idx), bytes(r.leaf_data)) for r in rows]


@dataclass(frozen=True)
class SearchFilter:
    party: str | None = None
    type: str | None = None
    outcome: str | None = None
    event: str | None = None
    message_id: str | None = None
    since: float | None = None
    until: float | None = None


def search(
    conn: Connection, flt: SearchFilter, *, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the items and the cursor for the next (older) page, if any."""
    t = audit_entries.c
    query = select(t.idx, t.leaf_data, *(t[name] for name in SEARCH_COLUMNS))
    asked = {
        name: value
        for name, value in (
            ("party", flt.party),
            ("type", flt.type),
            ("outcome", flt.outcome),
            ("event", flt.event),
            ("message_id", flt.message_id),
        )
        if value is not None
    }
    for name, value in asked.items():
        query = query.where(t[name] == value)
    # Entry times never decrease along the index (the writer guarantees it), so a time
    # range is an index range: two index lookups, then every filter walks (column, idx).
    if flt.since is not None:
        first = conn.execute(
            select(t.idx).where(t.time >= flt.since).order_by(t.time, t.idx).limit(1)
        ).scalar()
        if first is None:
            return [], None
        query = query.where(t.idx >= first)
    if flt.until is not None:
        last = conn.execute(
            select(t.idx).where(t.time < flt.until).order_by(t.time.desc(), t.idx.desc()).limit(1)
        ).scalar()
        if last is None:
            return [], None
        query = query.where(t.idx <= last)
    if before is not None:
        query = query.where(t.idx < before)
    rows = conn.execute(query.order_by(t.idx.desc()).limit(limit + 1)).all()
    items = _checked(rows[:limit], flt, asked)
    cursor = int(rows[limit - 1].idx) if len(rows) > limit else None
    return items, cursor


def _checked(rows: Sequence[Any], flt: SearchFilter, asked: dict[str, str]) -> list[dict[str, Any]]:
    """The items of `rows`, each checked against its own leaf: its columns, the values
    asked for and the time range. Any row that fails makes the whole answer a problem."""
    items: list[dict[str, Any]] = []
    wrong: dict[int, list[str]] = {}
    for row in rows:
        idx, leaf = int(row.idx), bytes(row.leaf_data)
        entry = json.loads(leaf)
        names = column_mismatches(row_columns(row), entry)
        names += [n for n, v in asked.items() if entry.get(n) != v and n not in names]
        if entry.get("index") != idx:
            names.append("index")
        outside = (flt.since is not None and row.time < flt.since) or (
            flt.until is not None and row.time >= flt.until
        )
        if outside and "time" not in names:
            names.append("time")
        if names:
            wrong[idx] = names
        else:
            items.append({"index": idx, "leaf_data": b64_encode(leaf), "entry": entry})
    if wrong:
        raise inconsistent(wrong)
    return items


def export_lines(engine: Engine, start: int, end: int) -> Iterator[bytes]:
    """JSON Lines of entries [start, end), read in chunks: memory does not grow with the range.

    Each line is `{"index", "leaf_data", "entry", "columns"}`: `columns` holds the row's
    search columns as stored, for the verifier to compare with the entry."""
    t = audit_entries.c
    position = start
    while position < end:
        stop = min(end, position + EXPORT_CHUNK)
        with engine.connect() as conn:
            rows = conn.execute(
                select(t.idx, t.leaf_data, *(t[name] for name in SEARCH_COLUMNS))
                .where(t.idx >= position, t.idx < stop)
                .order_by(t.idx)
            ).all()
        if not rows:
            return
        for row in rows:
            leaf = bytes(row.leaf_data)
            columns = json.dumps(row_columns(row), separators=(",", ":")).encode()
            yield (
                b'{"index":%d,"leaf_data":"%s","entry":%s,"columns":%s}\n'
                % (int(row.idx), b64_encode(leaf).encode(), leaf, columns)
            )
        position = stop
