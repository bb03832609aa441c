"""A node database whose log already holds millions of entries, written in bulk.

Posting ten million messages would take hours; this writes the rows a node would hold
after them directly, in the node's own formats (benchmarks/bulkrows.py says which),
so that the node starts on it, appends to it, signs checkpoints over it and proves
against it. Stored messages are as after their retention period: `jws` NULL, digest
and a receipt of a signed receipt's size kept. The perfect-subtree hashes come from
the node's `CompactRange`, the head row holds the frontier, and a checkpoint is
signed every `CHECKPOINT_EVERY` entries and at the end with the node's key, kept
beside the database. Entry times are spread evenly over the year before the build.

SQLite only: the schema comes from the migrations; the secondary indices are dropped,
the rows written with `executemany` (journal off, as a bulk load may), and the
indices created again. Leaves are built in worker processes while the main process
writes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks import nodes
from benchmarks.auditlog import AUDIT_NAME
from benchmarks.bulkrows import NODE, SPAN_DAYS, TABLES, Rows, chunks
from benchmarks.figures import OUT
from service.audit import merkle, store
from service.audit.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from service.db import migrate
from service.db.engine import create_engines
from service.protocol.keys import SigningKey

CHECKPOINT_EVERY = 1_000_000


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
    """The cached SQLite node database of `size` entries, built first if it is not there,
    and brought to the current schema by the node's migrations (as `migex serve` would,
    but before any timing: a new index over millions of rows takes a while)."""
    log = BigLog(size, OUT / f"biglog-{size}")
    marker = log.directory / "built.json"
    if marker.exists():
        began = time.monotonic()
        engines = create_engines(f"sqlite:///{log.database}")
        try:
            if not migrate.is_current(engines.reader):
                migrate.upgrade(engines.writer)
                print(f"  upgraded {log.database} in {time.monotonic() - began:.0f} s")
        finally:
            engines.dispose()
        return log
    if log.directory.exists():
        shutil.rmtree(log.directory)
    log.directory.mkdir(parents=True)
    kz = nodes.make_party(log.directory, NODE)
    kz.key_file.rename(log.key_file)
    print(f"  writing a {size:,}-entry node database in {log.directory} (kept for later runs)")
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
