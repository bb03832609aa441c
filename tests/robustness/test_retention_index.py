"""The retention purge finds the bodies still stored through an index: its cost does not
grow with the number of bodies purged before (nor with the node's history)."""

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


def _plan(conn: Connection, statement: str, parameters: Any) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(row[3]) for row in rows)
    # PostgreSQL chooses by its table statistics, which an empty test table does not
    # have; what it can choose from is the partial index itself.
    return str(
        conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_stored'"
        ).scalar_one()
    )


def test_a_purge_finds_messages_through_the_index_of_stored_bodies(
    client: TestClient, clock: FixedClock
) -> None:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    engine = node.engines.writer
    reads: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT") and _MESSAGES.search(statement):
            reads.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        purge_sync(node.committer, now=clock() + 400 * DAY, body_days=365)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert reads, "the purge read no messages"
    with engine.connect() as conn, conn.begin():
        plans = [(statement, _plan(conn, statement, parameters)) for statement, parameters in reads]
    # Each read starts from the stored bodies by age, not from every message of a type.
    assert [p for p in plans if "ix_messages_stored" not in p[1]] == []
    if engine.dialect.name == "postgresql":
        assert plans[0][1].endswith("WHERE (jws IS NOT NULL)")
