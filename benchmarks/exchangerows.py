"""The exchange tables behind a benchmark log: the messages, outbox rows and delivery
attempts its entries stand for, so that the console's message pages read as many rows
as a node with that log holds.

`auditlog` builds the log alone (entries, tree, checkpoints). This adds, on a copy of
it, a message row for each accepted or queued entry, an outbox row for each queued one
(delivered, but the last few pending and one in a hundred failed) and an attempt row
for each `delivery.attempt` entry, keyed as the writer keys them (`row_key`). The
agencies' systems acknowledged all but the last `UNACKED` received messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import auditlog
from service.audit import entries as ev
from service.ledger.committer import row_key

UNACKED = 500
PENDING = 50
CHUNK = 20_000


def _rows(size: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for index in range(size):
        event = auditlog.event_for(index)
        if event.event not in (
            ev.MESSAGE_ACCEPTED,
            ev.MESSAGE_QUEUED,
            ev.DELIVERY_ATTEMPT,
        ):
            continue
        at = auditlog.time_of(index, size)
        if event.event == ev.DELIVERY_ATTEMPT:
            queued = index - (index % 7 - 3)  # the queued entry of this week of seven
            if auditlog.event_for(queued).event != ev.MESSAGE_QUEUED:
                continue  # an audit query took its place: no message to refer to
            yield (
                "attempt",
                {
                    "pk": row_key(index),
                    "message_pk": row_key(queued),
                    "attempt": 1,
                    "at": at,
                    "outcome": "delivered",
                    "http_status": 201,
                    "duration_ms": 12.0,
                },
            )
            continue
        inbound = event.event == ev.MESSAGE_ACCEPTED
        yield (
            "message",
            {
                "pk": row_key(index),
                "direction": "in" if inbound else "out",
                "sender": event.sender,
                "recipient": event.recipient,
                "message_id": event.message_id,
                "type": event.type,
                "agreement": event.agreement,
                "purpose": event.purpose,
                "iat": int(at),
                "digest": (event.digest or "")[8:72],
                "status": "accepted" if inbound else "queued",
                "rule_id": event.rule,
                "created_at": at,
                "audit_index": index,
                "acked_at": at + 5 if inbound and index < size - UNACKED * 4 else None,
            },
        )
        if not inbound:
            state = "pending" if index >= size - PENDING * 7 else "delivered"
            if state == "delivered" and index % 100 == 3:
                state = "failed"
            yield (
                "outbox",
                {
                    "message_pk": row_key(index),
                    "state": state,
                    "attempts": 1,
                    "next_attempt_at": at,
                    "created_at": at,
                },
            )


TABLES = {"message": "messages", "outbox": "outbox", "attempt": "delivery_attempts"}
Writer = Callable[[str, list[dict[str, Any]]], None]


def _fill(size: int, write: Writer) -> dict[str, int]:
    """Write the rows in chunks, each chunk's parents before its children."""
    pending: dict[str, list[dict[str, Any]]] = {kind: [] for kind in TABLES}
    counts = dict.fromkeys(TABLES.values(), 0)

    def flush() -> None:
        for kind in TABLES:  # messages, then outbox rows and attempts that refer to them
            if pending[kind]:
                write(TABLES[kind], pending[kind])
                counts[TABLES[kind]] += len(pending[kind])
                pending[kind] = []

    for kind, row in _rows(size):
        pending[kind].append(row)
        if len(pending[kind]) >= CHUNK:
            flush()
    flush()
    return counts


def add_sqlite(db: Path, size: int) -> dict[str, int]:
    """Fill the exchange tables of the SQLite database `db` holding a log of `size`."""
    conn = sqlite3.connect(db)
    try:

        def write(table: str, rows: list[dict[str, Any]]) -> None:
            names = list(rows[0])
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608 - fixed names
                [tuple(r[n] for n in names) for r in rows],
            )

        counts = _fill(size, write)
        conn.commit()
    finally:
        conn.close()
    return counts


def add_postgres(dsn: str, size: int) -> dict[str, int]:
    """The same in PostgreSQL (COPY), then VACUUM ANALYZE as after a bulk load."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:

        def write(table: str, rows: list[dict[str, Any]]) -> None:
            names = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(tuple(r[n] for n in names))

        counts = _fill(size, write)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return counts
