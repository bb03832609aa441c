"""The retention purge finds the bodies still stored, and the messages still awaiting
their attachments, through indices: its cost does not grow with the number of bodies
purged or uploads expired before (nor with the node's history)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, event

from service.clock import FixedClock
from service.exchange.retention import DAY, purge_sync
from service.runtime import Node

# The messages table itself, not pending_messages (uploads awaited, a table of its own).
_MESSAGES = re.compile(r"(?<!\w)messages\b")
_PENDING = re.compile(r"\bpending_messages\b")


def _plan(conn: Connection, statement: str, parameters: Any, index: str) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(row[3]) for row in rows)
    # PostgreSQL chooses by its table statistics, which an empty test table does not
    # have; what it can choose from is the partial index itself.
    return str(
        conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %(index)s", {"index": index}
        ).scalar_one()
    )


def _assert_reads_through(
    client: TestClient, clock: FixedClock, table: re.Pattern[str], index: str, where: str
) -> None:
    """Each read of `table` by one retention run goes through the partial `index`
    (on PostgreSQL, which plans by statistics an empty table lacks: the index exists
    with the predicate `where`). The node's own start-up purge may read beside this
    one: every read caught counts."""
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    engine = node.engines.writer
    reads: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT") and table.search(statement):
            reads.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        # With the store: the expiry of uploads runs only where files are kept.
        purge_sync(node.committer, now=clock() + 400 * DAY, body_days=365, store=node.store)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert reads, f"the purge read nothing of {table.pattern}"
    with engine.connect() as conn, conn.begin():
        plans = [(st, _plan(conn, st, parameters, index)) for st, parameters in reads]
    assert [p for p in plans if index not in p[1]] == []
    if engine.dialect.name == "postgresql":
        assert plans[0][1].endswith(f"WHERE ({where})")


def test_a_purge_finds_messages_through_the_index_of_stored_bodies(
    client: TestClient, clock: FixedClock
) -> None:
    # Each read starts from the stored bodies by age, not from every message of a type.
    _assert_reads_through(client, clock, _MESSAGES, "ix_messages_stored", "jws IS NOT NULL")


def test_an_expiry_run_reads_only_the_messages_still_awaiting_their_files(
    client: TestClient, clock: FixedClock
) -> None:
    _assert_reads_through(client, clock, _PENDING, "ix_pending_open", "expired_at IS NULL")
