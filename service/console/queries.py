"""Read-side queries only the console needs: aggregates for the overview, checkpoint
history, and the statistics datasets received. Every query is bounded (a time window or
a limit), so a page costs the same with a million log entries as with a hundred.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from service.audit import entries as ev
from service.db.tables import audit_entries, checkpoints, messages, outbox


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root: bytes
    issued_at: float
    note: str


def checkpoint_history(conn: Connection, *, limit: int, before: int | None) -> list[CheckpointRow]:
    """Signed checkpoints, largest tree first; `before` pages by tree size."""
    c = checkpoints.c
    query = select(c.size, c.root, c.issued_at, c.note)
    if before is not None:
        query = query.where(c.size < before)
    rows = conn.execute(query.order_by(c.size.desc(), c.pk.desc()).limit(limit))
    return [
        CheckpointRow(int(r.size), bytes(r.root), float(r.issued_at), str(r.note)) for r in rows
    ]


def checkpoint_at(conn: Connection, size: int) -> CheckpointRow | None:
    c = checkpoints.c
    row = conn.execute(
        select(c.size, c.root, c.issued_at, c.note)
        .where(c.size == size)
        .order_by(c.pk.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return CheckpointRow(int(row.size), bytes(row.root), float(row.issued_at), str(row.note))


def latest_checkpoint(conn: Connection) -> CheckpointRow | None:
    found = checkpoint_history(conn, limit=1, before=None)
    return found[0] if found else None


def first_index_since(conn: Connection, since: float) -> int | None:
    """The first log index at or after `since`: entry times never decrease along the
    index, so a time window is an index range (as in service.audit.queries.search)."""
    t = audit_entries.c
    first = conn.execute(
        select(t.idx).where(t.time >= since).order_by(t.time, t.idx).limit(1)
    ).scalar()
    return None if first is None else int(first)


def rate_limit_hits(conn: Connection, *, since: float) -> list[tuple[str, int, float]]:
    """Per partner: inbound messages refused as rate-limited since `since`, and the last."""
    t = audit_entries.c
    first = first_index_since(conn, since)
    if first is None:
        return []
    rows = conn.execute(
        select(t.party, func.count().label("n"), func.max(t.time).label("last"))
        .where(t.idx >= first, t.event == ev.MESSAGE_REFUSED, t.code == "rate-limited")
        .group_by(t.party)
        .order_by(t.party)
    )
    return [(str(r.party or "-"), int(r.n), float(r.last)) for r in rows]


def outbox_counts(conn: Connection, states: Iterable[str], *, cap: int) -> dict[str, int]:
    """Messages in each delivery state, counted up to `cap + 1` (an index range each), so
    the count of a node that delivered millions costs no more than of one with `cap`."""
    o = outbox.c
    counts: dict[str, int] = {}
    for state in states:
        some = select(o.message_pk).where(o.state == state).limit(cap + 1).subquery()
        counts[state] = int(conn.execute(select(func.count()).select_from(some)).scalar_one())
    return counts


def inbox_backlog(conn: Connection) -> list[tuple[str, str, int, float]]:
    """Unacknowledged inbound messages by sender and type: count and oldest arrival."""
    m = messages.c
    rows = conn.execute(
        select(m.sender, m.type, func.count().label("n"), func.min(m.created_at).label("oldest"))
        .where(m.direction == "in", m.acked_at.is_(None))
        .group_by(m.sender, m.type)
        .order_by(m.sender, m.type)
    )
    return [(str(r.sender), str(r.type), int(r.n), float(r.oldest)) for r in rows]


@dataclass(frozen=True)
class DatasetRow:
    pk: int
    sender: str
    message_id: str
    received_at: float
    audit_index: int
    purged: bool


def received_datasets(
    conn: Connection, msg_type: str, *, limit: int, before: int | None
) -> list[DatasetRow]:
    """Inbound messages of one type, newest first, without their bodies."""
    m = messages.c
    query = select(m.pk, m.sender, m.message_id, m.created_at, m.audit_index, m.purged_at).where(
        m.direction == "in", m.type == msg_type
    )
    if before is not None:
        query = query.where(m.pk < before)
    rows = conn.execute(query.order_by(m.pk.desc()).limit(limit))
    return [
        DatasetRow(
            int(r.pk),
            str(r.sender),
            str(r.message_id),
            float(r.created_at),
            int(r.audit_index),
            r.purged_at is not None,
        )
        for r in rows
    ]


def inbound_key(conn: Connection, sender: str, message_id: str, msg_type: str) -> int | None:
    """The row key of an inbound message of a type, for `inbox.inbox_page(after=key - 1)`."""
    m = messages.c
    pk = conn.execute(
        select(m.pk).where(
            m.direction == "in", m.sender == sender, m.message_id == message_id, m.type == msg_type
        )
    ).scalar()
    return None if pk is None else int(pk)
