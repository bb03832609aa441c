"""One request's bad data never costs the other requests of its batch their answer.

The group committer sends a batch's writes together; when a write fails on the values
of one unit (a NUL byte PostgreSQL refuses in text, a number past its column's range)
the batch runs again with each unit isolated: that unit alone is refused with a 4xx
problem, its refusal entry is still written, and every other unit commits once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from service.audit import store
from service.audit.entries import AuditEvent
from service.clock import FixedClock
from service.config import load_config
from service.db.tables import audit_entries, messages
from service.exchange.inbound import AcceptUnit, check_inbound
from service.exchange.inbox import AckUnit
from service.exchange.outbound import RequeueUnit
from service.ledger.committer import AuditOnly
from service.main import create_app
from service.protocol.problems import Problem
from service.runtime import Node
from tests.support.batches import in_one_batch, queue_unit
from tests.support.nodes import Federation, envelope_for


@pytest.fixture
def node(federation: Federation, clock: FixedClock) -> Iterator[Node]:
    """A running node whose delivery workers are off, so a batch holds only our units."""
    app = create_app(load_config(federation.write_config()), clock=clock, run_delivery=False)
    with TestClient(app):
        yield app.state.node


def accept_unit(node: Node, federation: Federation) -> tuple[str, AcceptUnit]:
    """A partner's valid message, checked as the route checks it."""
    env = envelope_for(federation.uz)
    checked = check_inbound(node.policy, federation.uz.sign(env), node.clock())
    return env.id, AcceptUnit(checked, node.signer)


def hostile_units(node: Node) -> list[tuple[str, Any]]:
    """Units carrying values the database refuses; on SQLite the NUL texts are stored
    or simply not found, so only the number past every integer column's range is hostile
    there (it fails when bound)."""
    units: list[tuple[str, Any]] = [
        ("iat past 64 bits", queue_unit(node, iat=2**64)),
        ("ack of a NUL id", AckUnit("UZ:MIA", "\x00", "client-1")),
        ("retry of a NUL id", RequeueUnit(node.party, "\x00", "operator-1")),
    ]
    if not node.engines.is_sqlite:
        units += [
            ("type with a NUL", queue_unit(node, type="x\x00")),
            (
                "refusal entry with a NUL type",
                AuditOnly([AuditEvent("message.send-refused", "refused", type="x\x00")]),
            ),
        ]
    return units


def stored_count(node: Node, message_id: str) -> int:
    with node.engines.reader.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.message_id == message_id)
            ).scalar_one()
        )


def assert_tree_intact(node: Node) -> None:
    """Every entry of the head is stored, and the stored nodes give the head's root."""
    with node.engines.reader.connect() as conn:
        head = store.read_head(conn)
        entries = conn.execute(select(func.count()).select_from(audit_entries)).scalar_one()
        assert entries == head.size
        assert store.root_at(conn, head.size) == head.root


def test_hostile_and_valid_units_in_one_batch_only_the_hostile_are_refused(
    node: Node, federation: Federation
) -> None:
    accepted = [accept_unit(node, federation) for _ in range(3)]
    queued = [queue_unit(node) for _ in range(2)]
    hostile = hostile_units(node)
    valid: list[Any] = [unit for _, unit in accepted] + queued
    # Hostile units first, between and last: each position of a batch is covered.
    order = [hostile[0][1], *valid[:3], *[u for _, u in hostile[1:]], *valid[3:]]
    futures = dict(zip(map(id, order), in_one_batch(node.committer, *order), strict=True))

    for unit in valid:
        future: Future[Any] = futures[id(unit)]
        assert future.exception() is None, (type(unit).__name__, future.exception())
    for name, unit in hostile:
        problem = futures[id(unit)].exception()
        assert isinstance(problem, Problem), (name, problem)
        assert 400 <= problem.status < 500, (name, problem)
    for message_id, _ in accepted:
        assert stored_count(node, message_id) == 1
    for unit in queued:
        assert stored_count(node, unit.prepared.env.id) == 1
    # The refused message was not stored, and its refusal is in the log.
    overflow = hostile[0][1]
    assert stored_count(node, overflow.prepared.env.id) == 0
    with node.engines.reader.connect() as conn:
        refusal = conn.execute(
            select(audit_entries.c.event, audit_entries.c.code).where(
                audit_entries.c.message_id == overflow.prepared.env.id
            )
        ).one()
    assert tuple(refusal) == ("message.send-refused", "invalid-parameters")
    assert_tree_intact(node)
    # The writer goes on as before.
    message_id, unit = accept_unit(node, federation)
    assert node.committer.run_sync(unit).created
    assert stored_count(node, message_id) == 1


def test_a_batch_that_fails_nothing_sets_no_savepoints(
    node: Node, federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Isolation costs only the batches that need it: the usual batch of partner
    messages and outbound records is written without a savepoint round trip."""
    statements: list[str] = []
    batched: list[list[Any]] = []  # the units of each batch the writer wrote
    write = node.committer._write

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def recorded(batch: list[Any], **kw: Any) -> Any:
        batched.append([pending.unit for pending in batch])
        return write(batch, **kw)

    monkeypatch.setattr(node.committer, "_write", recorded)
    # The running node's own units (the start-up retention purge, which takes
    # savepoints) may join the batch on a loaded machine: then the batch is not the
    # usual one, and the units are sent again until they form a batch of their own.
    for _ in range(5):
        statements.clear()
        batched.clear()
        units = [accept_unit(node, federation)[1] for _ in range(3)] + [queue_unit(node)]
        event.listen(node.engines.writer, "before_cursor_execute", seen)
        try:
            futures = in_one_batch(node.committer, *units)
        finally:
            event.remove(node.engines.writer, "before_cursor_execute", seen)
        assert all(f.exception() is None for f in futures)
        [with_ours] = [b for b in batched if any(u is units[0] for u in b)]
        if len(with_ours) == len(units):
            break
    else:
        pytest.fail("the units never formed a batch of their own")
    # The writer's statements, one batch after another (each begins by locking the head);
    # other batches (e.g. the retention purge) may come between.
    batches: list[list[str]] = []
    for statement in statements:
        if statement.startswith("SELECT audit_head.size") or not batches:
            batches.append([])
        batches[-1].append(statement)
    ours = [b for b in batches if any(s.startswith("INSERT INTO messages") for s in b)]
    assert len(ours) == 1
    assert not [s for s in ours[0] if "SAVEPOINT" in s.upper()]
