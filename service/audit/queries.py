"""Read side of the audit log: pages, search with cursors, export in constant memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from service.db.tables import audit_entries
from service.protocol.b64 import b64_encode

EXPORT_CHUNK = 2000


def entry_item(idx: int, leaf_data: bytes) -> dict[str, Any]:
    return {"index": idx, "leaf_data": b64_encode(leaf_data), "entry": json.loads(leaf_data)}


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
    query = select(t.idx, t.leaf_data)
    for column, value in (
        (t.party, flt.party),
        (t.type, flt.type),
        (t.outcome, flt.outcome),
        (t.event, flt.event),
        (t.message_id, flt.message_id),
    ):
        if value is not None:
            query = query.where(column == value)
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
    items = [entry_item(int(r.idx), bytes(r.leaf_data)) for r in rows[:limit]]
    cursor = int(rows[limit - 1].idx) if len(rows) > limit else None
    return items, cursor


def export_lines(engine: Engine, start: int, end: int) -> Iterator[bytes]:
    """JSON Lines of entries [start, end), read in chunks: memory does not grow with the range."""
    position = start
    while position < end:
        stop = min(end, position + EXPORT_CHUNK)
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.idx, audit_entries.c.leaf_data)
                .where(audit_entries.c.idx >= position, audit_entries.c.idx < stop)
                .order_by(audit_entries.c.idx)
            ).all()
        if not rows:
            return
        for row in rows:
            leaf = bytes(row.leaf_data)
            yield (
                b'{"index":%d,"leaf_data":"%s","entry":%s}\n'
                % (int(row.idx), b64_encode(leaf).encode(), leaf)
            )
        position = stop
