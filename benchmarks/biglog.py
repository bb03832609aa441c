"""A node database whose log already holds millions of entries, written in bulk.

Posting ten million messages would take hours; this writes the rows a node would hold
after them directly, in the node's own formats, so that the node starts on it, appends
to it, signs checkpoints over it and proves against it. Every ten entries are:

- six `message.accepted` (from UZ:MIA, KG:SRS and TJ:MIA in turn), each with its
  `messages` row (direction `in`, acknowledged by the agency, body purged after its
  retention period: `jws` NULL, digest and signed-size receipt kept) and its
  `message_cases` row;
- one `message.queued` to a partner with its `messages` row (direction `out`) and
  `outbox` row (`delivered`), one `delivery.attempt` of it with its
  `delivery_attempts` row, and one `receipt.received` for it;
- one `message.refused` and one `audit.query` (no rows beside the entry).

Leaves are the JCS entries built by the node's own code (`entry_dict`, `leaf_bytes`);
the perfect-subtree hashes come from the node's `CompactRange`; the head row holds the
frontier; a checkpoint is signed every `CHECKPOINT_EVERY` entries and at the end with
the node's key, kept beside the database. Entry times are spread evenly over
`SPAN_DAYS` days before the build.

SQLite: the schema comes from the migrations; the secondary indices are dropped,
the rows written with `executemany` (journal off, as a bulk load may), and the
indices created again. PostgreSQL: the same rows with `COPY` into a fresh database.
Leaves are built in worker processes while the main process writes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks import nodes
from benchmarks.auditlog import AUDIT_NAME, _schema_fingerprint
from benchmarks.figures import OUT
from service.audit import entries as ev
from service.audit import merkle, store
from service.audit.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from service.audit.entries import AuditEvent, entry_dict
from service.db import migrate
from service.db.engine import create_engines
from service.exchange.rows import case_digest
from service.protocol.canonical import canonicalize_fast
from service.protocol.keys import SigningKey

NODE = "KZ:MIA"
PARTIES = ("UZ:MIA", "KG:SRS", "TJ:MIA")
SPAN_DAYS = 365
CHUNK = 50_000
CHECKPOINT_EVERY = 1_000_000
# A signed receipt is about this long; purged messages keep theirs.
RECEIPT = b"r" * 620


@dataclass
class Rows:
    """The rows of one chunk of indices, as tuples in each table's column order."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)


ENTRY_COLUMNS = ("idx", "time", "event", "party", "message_id", "type", "outcome", "code")
MESSAGE_COLUMNS = (
    "pk",
    "direction",
    "sender",
    "recipient",
    "message_id",
    "type",
    "agreement",
    "purpose",
    "reply_to",
    "iat",
    "digest",
    "jws",
    "status",
    "rule_id",
    "created_at",
    "audit_index",
    "removed_fields",
    "receipt",
    "receipt_audit_index",
    "acked_at",
    "purged_at",
)
TABLES: dict[str, tuple[str, ...]] = {
    "audit_entries": (*ENTRY_COLUMNS, "leaf_data"),
    "audit_nodes": ("level", "k", "hash"),
    "messages": MESSAGE_COLUMNS,
    "message_cases": ("message_pk", "case_digest"),
    "outbox": (
        "message_pk",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_until",
        "last_error",
        "created_at",
    ),
    "delivery_attempts": (
        "pk",
        "message_pk",
        "attempt",
        "at",
        "outcome",
        "http_status",
        "error",
        "duration_ms",
    ),
}


def _ids(index: int) -> tuple[str, str]:
    """A message id and a digest, fixed by the index of the entry that created it."""
    hashed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    digest = "sha-256:" + base64.urlsafe_b64encode(hashed).rstrip(b"=").decode()
    return str(uuid.UUID(bytes=hashed[:16], version=4)), digest


def _message_row(
    index: int, when: float, direction: str, sender: str, recipient: str
) -> tuple[Any, ...]:
    message_id, digest = _ids(index)
    inbound = direction == "in"
    return (
        index + 1,
        direction,
        sender,
        recipient,
        message_id,
        nodes.VERIFICATION,
        "kz-uz-2019",
        "identity-verification",
        None,
        int(when),
        digest,
        None,
        "accepted" if inbound else "delivered",
        "in-verification" if inbound else "out-verification",
        when,
        index,
        None,
        RECEIPT,
        None if inbound else index + 2,
        when + 60 if inbound else None,
        when + 1,
    )


def _event(index: int, when: float, rows: Rows) -> AuditEvent:
    kind = index % 10
    party = PARTIES[(index // 10) % 3]
    common: dict[str, Any] = {
        "type": nodes.VERIFICATION,
        "agreement": "kz-uz-2019",
        "purpose": "identity-verification",
    }
    if kind < 6:
        message_id, digest = _ids(index)
        rows.messages.append(_message_row(index, when, "in", party, NODE))
        rows.cases.append((index + 1, case_digest(f"{party}/{index // 1000}/{index % 997}")))
        return AuditEvent(
            ev.MESSAGE_ACCEPTED,
            "accepted",
            party=party,
            sender=party,
            recipient=NODE,
            message_id=message_id,
            rule="in-verification",
            digest=digest,
            **common,
        )
    if kind in (6, 7, 8):
        queued = index - (kind - 6)
        message_id, digest = _ids(queued)
        out: dict[str, Any] = {
            "party": party,
            "sender": NODE,
            "recipient": party,
            "message_id": message_id,
            **common,
        }
        if kind == 6:
            rows.messages.append(_message_row(index, when, "out", NODE, party))
            rows.outbox.append((index + 1, "delivered", 1, when, None, None, None, when))
            return AuditEvent(
                ev.MESSAGE_QUEUED, "queued", rule="out-verification", digest=digest, **out
            )
        if kind == 7:
            rows.attempts.append((index + 1, queued + 1, 1, when, "delivered", 201, None, 12.5))
            return AuditEvent(
                ev.DELIVERY_ATTEMPT,
                "delivered",
                digest=digest,
                detail={"attempt": 1, "http_status": 201},
                **out,
            )
        return AuditEvent(ev.RECEIPT_RECEIVED, "ok", detail={"message_digest": digest}, **out)
    if index % 20 == 9:
        return AuditEvent(ev.AUDIT_QUERY, "ok", detail={"route": "search", "results": 100})
    message_id, digest = _ids(index)
    return AuditEvent(
        ev.MESSAGE_REFUSED,
        "refused",
        party=party,
        sender=party,
        recipient=NODE,
        message_id=message_id,
        code="schema",
        digest=digest,
        **common,
    )


def build_chunk(first: int, last: int, start: float, step: float) -> Rows:
    """The rows of entries [first, last): run in a worker process."""
    rows = Rows()
    for index in range(first, last):
        when = start + index * step
        event = _event(index, when, rows)
        entry = entry_dict(event, index=index, time=when, node=NODE)
        leaf = canonicalize_fast(entry, numbers_checked=True)  # only small integers
        rows.entries.append(
            (
                *(index, when, event.event, event.party, event.message_id, event.type),
                *(event.outcome, event.code, leaf),
            )
        )
        rows.leaves.append(merkle.leaf_hash(leaf))
    return rows


def chunks(size: int, start: float, workers: int = 2) -> Iterator[Rows]:
    step = SPAN_DAYS * 86400.0 / max(1, size)
    bounds = [(first, min(size, first + CHUNK)) for first in range(0, size, CHUNK)]
    with ProcessPoolExecutor(workers) as pool:
        # At most a few chunks ahead of the writer, so memory stays bounded.
        pending = [pool.submit(build_chunk, a, b, start, step) for a, b in bounds[: workers * 2]]
        following = iter(bounds[workers * 2 :])
        while pending:
            rows = pending.pop(0).result()
            nxt = next(following, None)
            if nxt is not None:
                pending.append(pool.submit(build_chunk, nxt[0], nxt[1], start, step))
            yield rows


@dataclass
class Tree:
    """The tree as the bulk writer extends it: nodes to store, checkpoints to sign."""

    key: SigningKey
    compact: merkle.CompactRange = field(default_factory=merkle.CompactRange)
    checkpoints: list[tuple[int, bytes, float, str]] = field(default_factory=list)

    def extend(self, rows: Rows, size: int) -> list[tuple[int, int, bytes]]:
        created: list[tuple[int, int, bytes]] = []
        for leaf, entry in zip(rows.leaves, rows.entries, strict=True):
            created.extend(self.compact.append_collect(leaf))
            done = self.compact.size
            if done % CHECKPOINT_EVERY == 0 or done == size:
                root = self.compact.root()
                note = sign_checkpoint(
                    Checkpoint(AUDIT_NAME, done, root), AUDIT_NAME, self.key.private
                )
                self.checkpoints.append((done, root, float(entry[1]), note))
        return created

    def head(self, last_time: float) -> dict[str, Any]:
        size, _, at, _ = self.checkpoints[-1]
        return {
            "size": self.compact.size,
            "root": self.compact.root(),
            "frontier": b"".join(self.compact.frontier()),
            "checkpoint_size": size,
            "checkpoint_at": at,
            "last_time": last_time,
        }


@dataclass(frozen=True)
class BigLog:
    """A built node database and the node key that signed its checkpoints."""

    size: int
    directory: Path

    @property
    def database(self) -> Path:
        return self.directory / "node.db"

    @property
    def key_file(self) -> Path:
        return self.directory / "kz.pem"

    def party(self) -> nodes.Party:
        return nodes.load_party(self.key_file, NODE)


def _insert_sql(table: str) -> str:
    columns = TABLES[table]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - fixed names
        f"VALUES ({', '.join('?' * len(columns))})"
    )


def _write_sqlite(path: Path, size: int, tree: Tree) -> None:
    engines = create_engines(f"sqlite:///{path}")
    try:
        migrate.upgrade(engines.writer)
    finally:
        engines.dispose()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        indices = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indices:
            db.execute(f'DROP INDEX "{name}"')
        started = time.monotonic()
        last_time = 0.0
        for rows in chunks(size, time.time() - SPAN_DAYS * 86400.0):
            created = tree.extend(rows, size)
            db.execute("BEGIN")
            db.executemany(_insert_sql("audit_entries"), rows.entries)
            db.executemany(_insert_sql("audit_nodes"), created)
            db.executemany(_insert_sql("messages"), rows.messages)
            db.executemany(_insert_sql("message_cases"), rows.cases)
            db.executemany(_insert_sql("outbox"), rows.outbox)
            db.executemany(_insert_sql("delivery_attempts"), rows.attempts)
            db.execute("COMMIT")
            last_time = float(rows.entries[-1][1])
            done = tree.compact.size
            if done % 1_000_000 == 0 or done == size:
                rate = done / (time.monotonic() - started)
                print(f"    wrote {done:,} of {size:,} entries ({rate:,.0f}/s)", flush=True)
        _finish(db, tree, last_time)
        for name, sql in indices:
            began = time.monotonic()
            db.execute(sql)
            print(f"    index {name} in {time.monotonic() - began:.0f} s", flush=True)
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def _finish(db: sqlite3.Connection, tree: Tree, last_time: float) -> None:
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO checkpoints (size, root, issued_at, note) VALUES (?, ?, ?, ?)",
        tree.checkpoints,
    )
    head = tree.head(last_time)
    db.execute(
        "UPDATE audit_head SET size = :size, root = :root, frontier = :frontier, "
        "checkpoint_size = :checkpoint_size, checkpoint_at = :checkpoint_at, "
        "last_time = :last_time WHERE id = 1",
        head,
    )
    db.execute("COMMIT")


def ensure_sqlite(size: int) -> BigLog:
    """The cached SQLite node database of `size` entries, built first if it is not there."""
    directory = OUT / f"biglog-{size}-{_schema_fingerprint()}"
    for stale in OUT.glob(f"biglog-{size}-*"):
        if stale != directory:
            shutil.rmtree(stale)  # built for another schema
    log = BigLog(size, directory)
    marker = directory / "built.json"
    if marker.exists():
        return log
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    kz = nodes.make_party(directory, NODE)
    kz.key_file.rename(log.key_file)
    print(f"  writing a {size:,}-entry node database in {directory} (kept for later runs)")
    started = time.monotonic()
    _write_sqlite(log.database, size, Tree(kz.key))
    seconds = time.monotonic() - started
    marker.write_text(json.dumps({"size": size, "build_seconds": round(seconds, 1)}) + "\n")
    print(f"  built in {seconds:.0f} s ({log.database.stat().st_size / 1e9:.1f} GB)", flush=True)
    return log


@contextlib.contextmanager
def appended_to(log: BigLog) -> Iterator[str]:
    """The built database's URL, for a node to append to; afterwards every row added
    beyond the built log is deleted and the head row put back, so the next run starts
    from the same state (a copy of tens of gigabytes would take longer than the run).
    A marker file stays while the database differs from the built state, so a run
    that was interrupted is undone before the next one starts."""
    dirty = log.directory / "appended"
    if dirty.exists():
        restore(log)
    dirty.touch()
    try:
        yield f"sqlite:///{log.database}"
    finally:
        restore(log)
        dirty.unlink()


# Rows a node adds when it receives messages (its audit entries and tree nodes are
# deleted by index); tables the bulk load leaves empty are emptied.
_ADDED_ROWS = {
    "messages": "pk",
    "message_cases": "message_pk",
    "outbox": "message_pk",
    "delivery_attempts": "pk",
}
_EMPTY = ("rate_buckets", "node_state", "signed_versions", "disclosures", "disclosure_subjects")


def restore(log: BigLog) -> None:
    """Delete what runs appended to the built database; check the head is as built."""
    size = log.size
    db = sqlite3.connect(log.database, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM audit_entries WHERE idx >= ?", (size,))
        for level in range(64):
            # The subtree (level, k) was complete at `size` when (k + 1) << level <= size.
            db.execute("DELETE FROM audit_nodes WHERE level = ? AND k >= ?", (level, size >> level))
        for table, key in _ADDED_ROWS.items():
            db.execute(f"DELETE FROM {table} WHERE {key} > ?", (size,))  # noqa: S608
        for table in _EMPTY:
            db.execute(f"DELETE FROM {table}")  # noqa: S608
        built = db.execute(
            "SELECT pk, root, issued_at FROM checkpoints WHERE size = ? ORDER BY pk LIMIT 1",
            (size,),
        ).fetchone()
        db.execute("DELETE FROM checkpoints WHERE pk > ?", (built[0],))
        last_time = db.execute("SELECT time FROM audit_entries WHERE idx = ?", (size - 1,))
        frontier = _frontier(db, size)
        db.execute(
            "UPDATE audit_head SET size = ?, root = ?, frontier = ?, checkpoint_size = ?, "
            "checkpoint_at = ?, last_time = ? WHERE id = 1",
            (size, built[1], frontier, size, built[2], last_time.fetchone()[0]),
        )
        compact = merkle.CompactRange.from_frontier(size, _split(frontier))
        if compact.root() != built[1]:
            raise RuntimeError(f"{log.database}: the restored tree does not match its checkpoint")
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _frontier(db: sqlite3.Connection, size: int) -> bytes:
    hashes = []
    for level, k in merkle.root_nodes(size):
        row = db.execute("SELECT hash FROM audit_nodes WHERE level = ? AND k = ?", (level, k))
        hashes.append(bytes(row.fetchone()[0]))
    return b"".join(hashes)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


def check_grown(log: BigLog, url: str, vkey: str) -> str:
    """Check the node's latest checkpoint against the built one with a consistency proof,
    and one new entry's inclusion under it; return what was checked."""
    engines = create_engines(url)
    try:
        with engines.reader.connect() as conn:
            rows = conn.execute(
                text("SELECT size, note FROM checkpoints WHERE size >= :n ORDER BY size"),
                {"n": log.size},
            ).all()
            old = verify_checkpoint(str(rows[0].note), vkey)
            new = verify_checkpoint(str(rows[-1].note), vkey)
            if old.size != log.size or new.size <= old.size:
                raise RuntimeError(f"no checkpoint beyond the built log's {log.size:,} entries")
            proof = store.consistency_proof(conn, old.size, new.size)
            merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
            leaf = conn.execute(
                text("SELECT leaf_data FROM audit_entries WHERE idx = :i"), {"i": new.size - 1}
            ).scalar_one()
            path = store.inclusion_proof(conn, new.size - 1, new.size)
            merkle.verify_inclusion(
                new.size - 1, new.size, merkle.leaf_hash(bytes(leaf)), path, new.root
            )
    finally:
        engines.dispose()
    return (
        f"checkpoint at {new.size:,} verified, consistent with the built one at "
        f"{old.size:,}; entry {new.size - 1:,} included"
    )
