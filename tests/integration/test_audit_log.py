"""The audit log in the database: dense indices, proofs, refusals, tamper evidence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, update

from service.audit import merkle, queries, store
from service.audit.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from service.audit.entries import AuditEvent
from service.audit.note import verifier_key
from service.audit.offline import verify_export
from service.clock import FixedClock
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.db.tables import audit_entries, audit_head, audit_nodes, checkpoints
from service.ledger.committer import AuditOnly, GroupCommitter, Tx
from service.protocol.problems import Problem

NAME = "migex/KZ:MIA"


@dataclass
class Log:
    engines: Engines
    key: Ed25519PrivateKey
    clock: FixedClock
    opened: list[Engines] = field(default_factory=list)

    @property
    def vkey(self) -> str:
        return verifier_key(NAME, self.key.public_key())

    def committer(self) -> GroupCommitter:
        def sign(size: int, root: bytes) -> str:
            return sign_checkpoint(Checkpoint(NAME, size, root), NAME, self.key)

        engines = create_engines(self.engines.writer.url.render_as_string(hide_password=False))
        self.opened.append(engines)
        c = GroupCommitter(
            engines,
            node="KZ:MIA",
            clock=self.clock,
            sign_checkpoint=sign,
            checkpoint_interval=0,
        )
        c.start()
        return c

    def size(self) -> int:
        with self.engines.reader.connect() as conn:
            return store.read_head(conn).size

    def export(self) -> list[bytes]:
        return list(queries.export_lines(self.engines.reader, 0, self.size()))

    def latest_checkpoint(self) -> str:
        with self.engines.reader.connect() as conn:
            return str(
                conn.execute(
                    select(checkpoints.c.note).order_by(checkpoints.c.pk.desc()).limit(1)
                ).scalar_one()
            )


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    engines = create_engines(database_url)
    migrate.upgrade(engines.writer)
    log = Log(engines, Ed25519PrivateKey.generate(), FixedClock(1_795_000_000.0))
    yield log
    for opened in log.opened:
        opened.dispose()
    engines.dispose()


def event(n: int) -> AuditEvent:
    return AuditEvent("message.accepted", "accepted", party="UZ:MIA", message_id=f"m-{n}")


def fill(log: Log, count: int) -> None:
    committer = log.committer()
    try:
        for n in range(count):
            committer.run_sync(AuditOnly([event(n)]))
    finally:
        committer.stop()


def test_concurrent_writers_keep_indices_dense_and_the_tree_true(log: Log) -> None:
    committers = [log.committer() for _ in range(3)]
    per_thread = 40

    def work(c: GroupCommitter, t: int) -> None:
        futures = [c.submit(AuditOnly([event(t * 1000 + n)])) for n in range(per_thread)]
        for f in futures:
            f.result(timeout=60)

    threads = [threading.Thread(target=work, args=(committers[t % 3], t)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in committers:
        c.stop()
    with log.engines.reader.connect() as conn:
        indices = [
            r[0] for r in conn.execute(select(audit_entries.c.idx).order_by(audit_entries.c.idx))
        ]
        assert indices == list(range(6 * per_thread))
        leaves = [
            merkle.leaf_hash(bytes(r[0]))
            for r in conn.execute(select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx))
        ]
        head = store.read_head(conn)
    assert head.size == len(leaves)
    compact = merkle.CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    assert head.root == compact.root()


def test_proofs_from_stored_nodes_verify(log: Log) -> None:
    fill(log, 37)
    with log.engines.reader.connect() as conn:
        root = store.root_at(conn, 37)
        old_root = store.root_at(conn, 20)
        for index in (0, 5, 36):
            leaf = merkle.leaf_hash(
                bytes(
                    conn.execute(
                        select(audit_entries.c.leaf_data).where(audit_entries.c.idx == index)
                    ).scalar_one()
                )
            )
            merkle.verify_inclusion(index, 37, leaf, store.inclusion_proof(conn, index, 37), root)
        merkle.verify_consistency(20, 37, old_root, root, store.consistency_proof(conn, 20, 37))


@dataclass
class FailingUnit:
    problem: Problem | None

    def run(self, tx: Tx) -> Any:
        tx.audit.append(AuditEvent("message.accepted", "accepted", message_id="doomed"))
        if self.problem is not None:
            raise self.problem
        raise RuntimeError("a bug")

    def refused(self, tx: Tx, problem: Problem) -> None:
        tx.audit.append(
            AuditEvent("message.refused", "refused", code=problem.code, message_id="doomed")
        )


@pytest.mark.parametrize("problem", [Problem("schema", "bad body"), None])
def test_a_refused_unit_rolls_back_but_leaves_its_trace(log: Log, problem: Problem | None) -> None:
    committer = log.committer()
    try:
        ok = committer.submit(AuditOnly([event(1)]))
        bad = committer.submit(FailingUnit(problem))
        ok2 = committer.submit(AuditOnly([event(2)]))
        assert ok.result(10) >= 0
        with pytest.raises(Problem):
            bad.result(10)
        assert ok2.result(10) >= 0
    finally:
        committer.stop()
    with log.engines.reader.connect() as conn:
        events = [
            r[0] for r in conn.execute(select(audit_entries.c.event).order_by(audit_entries.c.idx))
        ]
    assert events[-3:] == ["message.accepted", "message.refused", "message.accepted"]
    assert verify_export(log.export(), log.latest_checkpoint(), log.vkey).ok


# -- tampering by someone with write access to the database --------------------


def _tampered(log: Log, action: str) -> None:
    t = audit_entries.c
    with log.engines.writer.begin() as conn:
        if action == "edit":
            data = bytes(conn.execute(select(t.leaf_data).where(t.idx == 3)).scalar_one())
            conn.execute(
                update(audit_entries)
                .where(t.idx == 3)
                .values(leaf_data=data.replace(b"m-3", b"m-X"))
            )
        elif action == "delete":
            conn.execute(delete(audit_entries).where(t.idx == 3))
            conn.execute(update(audit_entries).where(t.idx > 3).values(idx=t.idx - 1))
        elif action == "reorder":
            a = bytes(conn.execute(select(t.leaf_data).where(t.idx == 3)).scalar_one())
            b = bytes(conn.execute(select(t.leaf_data).where(t.idx == 4)).scalar_one())
            conn.execute(update(audit_entries).where(t.idx == 3).values(leaf_data=b))
            conn.execute(update(audit_entries).where(t.idx == 4).values(leaf_data=a))
        elif action == "insert":
            conn.execute(update(audit_entries).where(t.idx >= 3).values(idx=t.idx + 100000))
            conn.execute(update(audit_entries).where(t.idx >= 100003).values(idx=t.idx - 99999))
            row = conn.execute(select(audit_entries).where(t.idx == 2)).mappings().one()
            conn.execute(audit_entries.insert().values({**row, "idx": 3}))


@pytest.mark.parametrize("action", ["edit", "delete", "reorder", "insert"])
def test_verification_detects_a_changed_row(log: Log, action: str) -> None:
    fill(log, 8)
    note = log.latest_checkpoint()
    assert verify_export(log.export(), note, log.vkey).ok
    _tampered(log, action)
    report = verify_export(list(queries.export_lines(log.engines.reader, 0, 9)), note, log.vkey)
    assert not report.ok
    assert report.first_bad_index is None or report.first_bad_index <= 4


def test_a_checkpoint_before_tampering_is_inconsistent_with_one_after(log: Log) -> None:
    fill(log, 8)
    before = verify_checkpoint(log.latest_checkpoint(), log.vkey)
    _tampered(log, "edit")
    # A careful administrator also rebuilds every stored tree node over the edited row,
    # so the node itself keeps appending and signing over the altered history.
    with log.engines.writer.begin() as conn:
        leaves = [
            merkle.leaf_hash(bytes(r[0]))
            for r in conn.execute(select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx))
        ]
        compact = merkle.CompactRange()
        nodes = [n for leaf in leaves for n in compact.append_collect(leaf)]
        conn.execute(delete(audit_nodes))
        conn.execute(audit_nodes.insert(), [{"level": lv, "k": k, "hash": h} for lv, k, h in nodes])
        conn.execute(
            update(audit_head).values(root=compact.root(), frontier=b"".join(compact.frontier()))
        )
    fill(log, 4)
    after = verify_checkpoint(log.latest_checkpoint(), log.vkey)
    assert after.size == 12
    with log.engines.reader.connect() as conn:
        proof = store.consistency_proof(conn, before.size, after.size)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(before.size, after.size, before.root, after.root, proof)


def test_log_size_counts_every_entry(log: Log) -> None:
    fill(log, 5)
    with log.engines.reader.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(audit_entries)).scalar_one() == log.size()
        )
