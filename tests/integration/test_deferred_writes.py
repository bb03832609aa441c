"""Deferred writes in a group commit: primary keys taken under the lock, updates merged
per row in batch order, and a refused unit's deferred work dropped."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert, select

from service.audit import store
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.entries import AuditEvent
from service.clock import FixedClock
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.db.tables import audit_entries, messages
from service.exchange.rows import defer_message
from service.ledger.cache import BatchCache, KnownMessage
from service.ledger.committer import GroupCommitter, Tx
from service.privacy.atrest import PLAINTEXT
from service.protocol.envelope import Envelope
from service.protocol.problems import Problem
from tests.support.batches import in_one_batch

NAME = "migex/KZ:MIA"


@dataclass
class Step:
    """A unit that runs `work` and appends one audit entry; it needs no savepoint."""

    work: Callable[[Tx], Any]
    needs_savepoint = False

    def run(self, tx: Tx) -> Any:
        tx.audit.append(AuditEvent("test.step", "ok"))
        return self.work(tx)

    def refused(self, tx: Tx, problem: Problem) -> None:
        tx.audit.append(AuditEvent("test.step", "refused", code=problem.code))


@pytest.fixture
def engines(database_url: str) -> Iterator[Engines]:
    engines = create_engines(database_url)
    migrate.upgrade(engines.writer)
    yield engines
    engines.dispose()


def started_committer(engines: Engines, **options: Any) -> GroupCommitter:
    key = Ed25519PrivateKey.generate()
    c = GroupCommitter(
        engines,
        node="KZ:MIA",
        clock=FixedClock(1_795_000_000.0),
        sign_checkpoint=lambda size, root: sign_checkpoint(Checkpoint(NAME, size, root), NAME, key),
        checkpoint_interval=0,
        **options,
    )
    c.start()
    return c


@pytest.fixture
def committer(engines: Engines) -> Iterator[GroupCommitter]:
    c = started_committer(engines)
    yield c
    c.stop()


def message(tx: Tx, status: str = "queued", message_id: str | None = None) -> int:
    env = Envelope(
        v=1,
        id=message_id or str(uuid.uuid4()),
        iss="KZ:MIA",
        aud="KG:MVD",
        iat=1_795_000_000,
        type="citizenship.verification-request",
        agreement="kz-kg-2019",
        purpose="identity-verification",
        reply_to=None,
        body={},
    )
    return defer_message(
        tx,
        env,
        direction="out",
        digest="0" * 64,
        body=PLAINTEXT.message(b"x.y.z", env.iss, env.id),
        status=status,
        rule_id="r1",
        audit_index=tx.audit.size - 1,
    )


def refuse_after(work: Callable[[Tx], Any]) -> Callable[[Tx], Any]:
    def run(tx: Tx) -> Any:
        work(tx)
        raise Problem("forbidden", "refused after deferring its writes")

    return run


def rows(engines: Engines) -> dict[int, tuple[str, str]]:
    with engines.reader.connect() as conn:
        result = conn.execute(select(messages.c.pk, messages.c.status, messages.c.rule_id))
        return {int(r.pk): (r.status, r.rule_id) for r in result}


def test_a_row_is_keyed_by_its_audit_entry_and_a_refused_unit_leaves_no_row(
    engines: Engines, committer: GroupCommitter
) -> None:
    committer.run_sync(Step(message))
    batch = in_one_batch(
        committer, Step(message), Step(refuse_after(message)), Step(message), Step(message)
    )
    assert isinstance(batch[1].exception(), Problem)
    kept = [f.result() for i, f in enumerate(batch) if i != 1]
    with engines.reader.connect() as conn:
        stored = dict(conn.execute(select(messages.c.pk, messages.c.audit_index)).all())
    # Each key is one more than the index of the entry the row was created with. The
    # refused unit's work was rolled back; its index went to its refusal entry, which
    # creates no row.
    assert sorted(stored) == [1, *kept]
    assert all(pk == index + 1 for pk, index in stored.items())
    assert kept == [kept[0], kept[0] + 2, kept[0] + 3]


def test_updates_of_one_row_apply_in_batch_order(
    engines: Engines, committer: GroupCommitter
) -> None:
    a = committer.run_sync(Step(message))
    b = committer.run_sync(Step(message))

    def update(pk: int, **values: Any) -> Callable[[Tx], None]:
        return lambda tx: tx.defer_update(messages, "pk", pk, values)

    batch = in_one_batch(
        committer,
        Step(update(a, status="first", rule_id="r2")),
        Step(update(b, status="other")),
        Step(refuse_after(update(a, status="refused"))),
        Step(update(a, status="second")),
    )
    assert [f.exception() is None for f in batch] == [True, True, False, True]
    assert rows(engines) == {a: ("second", "r2"), b: ("other", "r1")}


def test_an_update_may_touch_a_row_inserted_in_the_same_batch(
    engines: Engines, committer: GroupCommitter
) -> None:
    def insert_then_update(tx: Tx) -> int:
        pk = message(tx)
        tx.defer_update(messages, "pk", pk, {"status": "delivered"})
        return pk

    (future,) = in_one_batch(committer, Step(insert_then_update))
    assert rows(engines) == {future.result(): ("delivered", "r1")}


def test_a_deferred_write_that_fails_refuses_its_unit_alone(
    engines: Engines, committer: GroupCommitter
) -> None:
    taken = committer.run_sync(Step(message))
    before = rows(engines)

    def duplicate_key(tx: Tx) -> None:
        pk = message(tx)
        # Rewrite the deferred row's key to one already stored: the insert fails when
        # the batch's writes are sent (in PostgreSQL's pipeline, at its sync).
        tx.deferred[-1][1]["pk"] = taken
        assert pk != taken

    kept, failed = in_one_batch(committer, Step(message), Step(duplicate_key))
    # Not an outage: the batch ran again with each unit isolated, and only the unit
    # whose write failed was refused (a defect, not the client's: 500, nothing stored).
    problem = failed.exception()
    assert isinstance(problem, Problem)
    assert problem.code == "internal"
    assert rows(engines) == {**before, kept.result(): ("queued", "r1")}
    with engines.reader.connect() as conn:
        outcomes = conn.execute(
            select(audit_entries.c.outcome, audit_entries.c.code).order_by(audit_entries.c.idx)
        ).all()
    assert [tuple(o) for o in outcomes] == [("ok", None), ("ok", None), ("refused", "internal")]
    # The writer goes on.
    assert committer.run_sync(Step(message)) > taken


POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@POSTGRES_ONLY
def test_a_message_stored_meanwhile_by_another_process_runs_the_batch_again(
    engines: Engines, database_url: str
) -> None:
    """On PostgreSQL the duplicate lookup runs before the head row is locked. When
    another process stores the same message in between, the batch's insert fails on
    the unique constraint and the batch runs again with the lookup under the lock."""
    racing_id = str(uuid.uuid4())
    other = create_engines(database_url)
    lookups: list[bool] = []

    def lookup(conn: Connection, cache: BatchCache, units: Sequence[Any]) -> None:
        found = conn.execute(
            select(messages.c.pk).where(
                messages.c.sender == "KZ:MIA", messages.c.message_id == racing_id
            )
        ).first()
        lookups.append(found is not None)
        if found is not None:
            cache.messages.load(("KZ:MIA", racing_id), KnownMessage("stored", b"", 0))
        elif len(lookups) == 1:
            with other.writer.begin() as theirs:  # the other process, after this lookup
                theirs.execute(
                    insert(messages).values(
                        pk=1_000_000,
                        direction="out",
                        sender="KZ:MIA",
                        recipient="KG:MVD",
                        message_id=racing_id,
                        type="citizenship.verification-request",
                        agreement="kz-kg-2019",
                        purpose="identity-verification",
                        iat=1_795_000_000,
                        digest="0" * 64,
                        jws=b"x.y.z",
                        status="queued",
                        rule_id="r1",
                        created_at=1_795_000_000.0,
                        audit_index=999_999,
                    )
                )

    def store_unless_stored(tx: Tx) -> str:
        if ("KZ:MIA", racing_id) in tx.cache.messages:
            return "found"
        message(tx, message_id=racing_id)
        return "stored"

    committer = started_committer(engines, prefetch=[lookup], early_prefetch=[lookup])
    try:
        assert committer.run_sync(Step(store_unless_stored)) == "found"
    finally:
        committer.stop()
        other.dispose()
    # Early (absent), then under the lock in the second run (present).
    assert lookups == [False, True]
    with engines.reader.connect() as conn:
        stored = conn.execute(select(messages.c.pk).where(messages.c.message_id == racing_id))
        assert [r.pk for r in stored] == [1_000_000]
        assert store.read_head(conn).size == 1  # the second run's entry only
