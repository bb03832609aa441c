"""The `messages` row of a message, written by the writer's deferred inserts, and the
row linking it to its case (for legal holds, exchange/holds.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from service.db.tables import message_cases, messages
from service.ledger.committer import Tx, row_key
from service.protocol.envelope import Envelope


def defer_message(
    tx: Tx,
    env: Envelope,
    *,
    direction: str,
    digest: str,
    body: Mapping[str, Any],
    status: str,
    rule_id: str,
    audit_index: int,
    receipt: bytes | None = None,
    removed_fields: str | None = None,
) -> int:
    """Queue the insert of one message row (every column given, as executemany needs),
    created with the audit entry at `audit_index`; return its primary key. `body` holds
    the stored body's columns (`Bodies.message`: sealed, or as they are)."""
    pk = row_key(audit_index)
    row: dict[str, Any] = {
        "pk": pk,
        "direction": direction,
        "sender": env.iss,
        "recipient": env.aud,
        "message_id": env.id,
        "type": env.type,
        "agreement": env.agreement,
        "purpose": env.purpose,
        "reply_to": env.reply_to,
        "iat": env.iat,
        "digest": digest,
        **body,
        "status": status,
        "rule_id": rule_id,
        "created_at": tx.now,
        "audit_index": audit_index,
        "receipt": receipt,
        "removed_fields": removed_fields,
        "receipt_audit_index": None,
        "acked_at": None,
        "purged_at": None,
    }
    tx.defer(messages, row)
    case = case_digest_of(env.body)
    if case is not None:
        tx.defer(message_cases, {"message_pk": pk, "case_digest": case})
    return pk


def case_digest(case_reference: str) -> str:
    """The hex SHA-256 of a case reference: how a message is linked to a legal hold."""
    return hashlib.sha256(case_reference.encode("utf-8", "surrogatepass")).hexdigest()


def case_digest_of(body: dict[str, Any]) -> str | None:
    """The digest of the body's `case_reference` (the agency's file number), if any."""
    reference = body.get("case_reference")
    return case_digest(reference) if isinstance(reference, str) else None
