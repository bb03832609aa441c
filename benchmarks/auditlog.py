"""A large audit log built once and kept in benchmarks/out/ for the proofs and verify runs.

The log is written with the node's own `Appender` in large transactions, so the
database holds exactly what a node stores: entries with their JCS leaf data, the
perfect-subtree hashes, the head row and signed checkpoints (one every 100,000
entries and one at the end). Entries mix parties, events and outcomes, and their
times are spread evenly over `SPAN_DAYS` days.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert, select, update

from benchmarks.figures import OUT
from service.audit import entries as ev
from service.audit import store
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.note import verifier_key
from service.db import migrate
from service.db.engine import Engines, create_engines
from service.db.tables import audit_head, checkpoints
from service.protocol.keys import generate_private_key, load_signing_key, write_private_key

NODE = "KZ:MIA"
AUDIT_NAME = f"migex/{NODE}"
KID = f"{NODE}#bench-audit"
START = 1_790_000_000.0  # 2026-09-21T...Z
SPAN_DAYS = 60
PARTIES = ("UZ:MIA", "KG:SRS", "TJ:MIA")
BATCH = 10_000
CHECKPOINT_EVERY = 100_000


@dataclass(frozen=True)
class BuiltLog:
    size: int
    directory: Path
    key: Ed25519PrivateKey

    @property
    def url(self) -> str:
        return f"sqlite:///{self.directory / 'node.db'}"

    @property
    def vkey(self) -> str:
        return verifier_key(AUDIT_NAME, self.key.public_key())

    def time_of(self, index: int) -> float:
        return time_of(index, self.size)

    def sign(self, size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint(AUDIT_NAME, size, root), AUDIT_NAME, self.key)


def time_of(index: int, size: int) -> float:
    return START + index * (SPAN_DAYS * 86400.0 / size)


def event_for(index: int) -> ev.AuditEvent:
    """A deterministic mix: inbound accepts and refusals, queued sends, attempts, receipts."""
    party = PARTIES[index % 3] if index % 10 else None
    hashed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    digest = "sha-256:" + hashed.hex()
    message_id = str(uuid.UUID(bytes=hashed[16:], version=4))
    kind = index % 7
    common: dict[str, Any] = {
        "party": party,
        "message_id": message_id,
        "type": "citizenship.verification-request",
        "agreement": "kz-uz-2019",
        "purpose": "identity-verification",
        "digest": digest,
    }
    if party is None:
        return ev.AuditEvent(ev.AUDIT_QUERY, "ok", detail={"route": "search", "results": 100})
    if kind in (0, 1):
        return ev.AuditEvent(
            ev.MESSAGE_ACCEPTED,
            "accepted",
            sender=party,
            recipient=NODE,
            rule="in-verification",
            **common,
        )
    if kind == 2:
        return ev.AuditEvent(
            ev.MESSAGE_REFUSED, "refused", sender=party, recipient=NODE, code="schema", **common
        )
    if kind == 3:
        return ev.AuditEvent(
            ev.MESSAGE_QUEUED,
            "queued",
            sender=NODE,
            recipient=party,
            rule="out-verification",
            **common,
        )
    if kind in (4, 5):
        return ev.AuditEvent(
            ev.DELIVERY_ATTEMPT,
            "delivered",
            sender=NODE,
            recipient=party,
            detail={"attempt": 1, "http_status": 201},
            **common,
        )
    return ev.AuditEvent(ev.RECEIPT_RECEIVED, "ok", sender=party, recipient=NODE, **common)


def _checkpoint(conn: Connection, log: BuiltLog, size: int, root: bytes, at: float) -> None:
    conn.execute(
        insert(checkpoints).values(size=size, root=root, issued_at=at, note=log.sign(size, root))
    )
    conn.execute(
        update(audit_head)
        .where(audit_head.c.id == store.HEAD_ID)
        .values(checkpoint_size=size, checkpoint_at=at)
    )


def _build(log: BuiltLog, engines: Engines) -> None:
    frontier: list[bytes] = []
    size = log.size
    with engines.writer.connect() as conn:
        start = store.read_head(conn).size
    if start:
        raise RuntimeError(f"{log.directory} holds a partial log; remove it and run again")
    started = time.monotonic()
    for first in range(0, size, BATCH):
        last = min(size, first + BATCH)
        with engines.writer.begin() as conn:
            head = store.read_head(conn, for_update=True)
            appender = store.Appender(NODE, head.size, frontier, time_of(first, size))
            for index in range(first, last):
                appender.now = time_of(index, size)
                appender.append(event_for(index))
            appender.flush(conn)
            frontier = appender.frontier()
            if last % CHECKPOINT_EVERY == 0 or last == size:
                _checkpoint(conn, log, last, appender.root(), time_of(last - 1, size))
        if last % 100_000 == 0 or last == size:
            rate = last / (time.monotonic() - started)
            print(f"    built {last:,} of {size:,} entries ({rate:,.0f}/s)", flush=True)


def _schema_fingerprint() -> str:
    """Changes whenever a migration file changes, so a cached log always has the schema."""
    digest = hashlib.sha256()
    for path in sorted((Path(migrate.__file__).parent / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def ensure_log(size: int) -> BuiltLog:
    """The cached log of `size` entries, built first if it is not there yet."""
    directory = OUT / f"auditlog-{size}-{_schema_fingerprint()}"
    for stale in OUT.glob(f"auditlog-{size}*"):
        if stale != directory:
            shutil.rmtree(stale)  # built for another schema
    marker = directory / "built.json"
    key_file = directory / "audit.pem"
    if marker.exists():
        key = load_signing_key(key_file, KID).private
        assert isinstance(key, Ed25519PrivateKey)
        return BuiltLog(size, directory, key)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    private = generate_private_key("ed25519")
    assert isinstance(private, Ed25519PrivateKey)
    write_private_key(key_file, private)
    log = BuiltLog(size, directory, private)
    print(f"  building a {size:,}-entry audit log in {directory} (kept for later runs)", flush=True)
    started = time.monotonic()
    engines = create_engines(log.url)
    try:
        migrate.upgrade(engines.writer)
        _build(log, engines)
    finally:
        engines.dispose()
    seconds = time.monotonic() - started
    marker.write_text(json.dumps({"size": size, "build_seconds": round(seconds, 1)}) + "\n")
    return log


def latest_checkpoint(conn: Connection) -> tuple[int, str]:
    row = conn.execute(
        select(checkpoints.c.size, checkpoints.c.note).order_by(checkpoints.c.size.desc()).limit(1)
    ).one()
    return int(row.size), str(row.note)
