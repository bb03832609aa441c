"""The rows of a bulk-written node database (benchmarks/biglog.py): entries, their leaves
and the message rows beside them, built in worker processes, chunk by chunk.

Every ten entries are six `message.accepted` (from UZ:MIA, KG:SRS and TJ:MIA in turn)
with their `messages` and `message_cases` rows; one `message.queued` with its
`messages` and `outbox` rows, one `delivery.attempt` of it with its
`delivery_attempts` row and one `receipt.received` for it; one `message.refused` or
`audit.query`. Leaves are the JCS entries the node's own `entry_dict` gives.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks import nodes
from service.audit import entries as ev
from service.audit import merkle
from service.audit.entries import AuditEvent, entry_dict
from service.exchange.rows import case_digest
from service.protocol.canonical import canonicalize_fast

NODE = "KZ:MIA"
PARTIES = ("UZ:MIA", "KG:SRS", "TJ:MIA")
SPAN_DAYS = 365
CHUNK = 50_000
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
