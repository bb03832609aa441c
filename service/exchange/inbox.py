"""Reading what the node holds for its own agency: outbound status, inbox, acknowledgements."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, select, update

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import delivery_attempts, messages, outbox
from service.ledger.committer import Tx
from service.privacy.atrest import Bodies
from service.protocol import envelope, jws
from service.protocol.problems import Problem
from service.witness.intake import proof_state
from service.witness.partnerproofs import PROOFS_TYPE as NODE_CONSUMED_TYPE


def _decoded(token: bytes | None) -> dict[str, Any] | None:
    if token is None:
        return None
    return envelope.parse_payload(jws.parse_compact(bytes(token)).payload).to_dict()


def outbound_status(conn: Connection, node: str, message_id: str) -> dict[str, Any]:
    m = messages.c
    row = (
        conn.execute(
            select(
                messages,
                outbox.c.state,
                outbox.c.attempts,
                outbox.c.next_attempt_at,
                outbox.c.last_error,
            )
            .join(outbox, outbox.c.message_pk == m.pk)
            .where(m.direction == "out", m.sender == node, m.message_id == message_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Problem("not-found", f"no outbound message {message_id}")
    attempts = [
        {
            "attempt": a.attempt,
            "at": a.at,
            "outcome": a.outcome,
            "http_status": a.http_status,
            "error": a.error,
        }
        for a in conn.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.message_pk == row["pk"])
            .order_by(delivery_attempts.c.pk)
        )
    ]
    replies = [
        {"id": r.message_id, "from": r.sender, "type": r.type, "audit_index": r.audit_index}
        for r in conn.execute(
            select(m.message_id, m.sender, m.type, m.audit_index).where(
                m.direction == "in", m.reply_to == message_id, m.sender == row["recipient"]
            )
        )
    ]
    receipt = row["receipt"]
    return {
        "id": message_id,
        "to": row["recipient"],
        "type": row["type"],
        "agreement": row["agreement"],
        "purpose": row["purpose"],
        "reply_to": row["reply_to"],
        "status": row["status"],
        "audit_index": row["audit_index"],
        "removed_fields": json.loads(row["removed_fields"]) if row["removed_fields"] else [],
        "attempts": attempts,
        "next_attempt_at": row["next_attempt_at"] if row["state"] == "pending" else None,
        "last_error": row["last_error"],
        "receipt": None
        if receipt is None
        else {
            "jws": bytes(receipt).decode(),
            "payload": _decoded(receipt),
            "partner_audit_index": row["receipt_audit_index"],
        },
        "replies": replies,
        "delivery_proof": proof_state(conn, row["pk"]),
    }


def inbox_page(
    conn: Connection,
    *,
    msg_type: str | None,
    unacked: bool,
    after: int | None,
    limit: int,
    bodies: Bodies,
) -> tuple[list[dict[str, Any]], int | None]:
    m = messages.c
    query = select(messages).where(m.direction == "in")
    if msg_type is not None:
        query = query.where(m.type == msg_type)
    else:  # the node consumes delivery proofs itself (docs/protocol.md, protocol v1.1)
        query = query.where(m.type != NODE_CONSUMED_TYPE)
    if unacked:
        query = query.where(m.acked_at.is_(None))
    if after is not None:
        query = query.where(m.pk > after)
    rows = conn.execute(query.order_by(m.pk).limit(limit + 1)).mappings().all()
    items = [
        {
            "id": r["message_id"],
            "from": r["sender"],
            "type": r["type"],
            "agreement": r["agreement"],
            "purpose": r["purpose"],
            "reply_to": r["reply_to"],
            "received_at": r["created_at"],
            "audit_index": r["audit_index"],
            "acked": r["acked_at"] is not None,
            "body": (_decoded(bodies.open_message(r, r["sender"], r["message_id"])) or {}).get(
                "body"
            ),
            "purged": r["purged_at"] is not None,
        }
        for r in rows[:limit]
    ]
    cursor = int(rows[limit - 1]["pk"]) if len(rows) > limit else None
    return items, cursor


def outbox_by_state(conn: Connection, state: str, limit: int) -> list[dict[str, Any]]:
    """Outbound messages in one delivery state (pending, delivered, failed), oldest first."""
    m = messages.c
    o = outbox.c
    rows = conn.execute(
        select(
            m.message_id,
            m.recipient,
            m.type,
            m.status,
            o.attempts,
            o.last_error,
            o.created_at,
            o.next_attempt_at,
        )
        .join(outbox, o.message_pk == m.pk)
        .where(o.state == state)
        .order_by(o.created_at)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


@dataclass
class AckUnit:
    sender: str
    message_id: str
    client: str
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> bool:
        m = messages.c
        row = tx.conn.execute(
            select(m.pk, m.acked_at, m.type).where(
                m.direction == "in", m.sender == self.sender, m.message_id == self.message_id
            )
        ).first()
        if row is None:
            raise Problem("not-found", f"no inbound message {self.message_id} from {self.sender}")
        if row.acked_at is not None:
            return False
        tx.conn.execute(update(messages).where(m.pk == row.pk).values(acked_at=tx.now))
        tx.audit.append(
            AuditEvent(
                ev.INBOX_ACK,
                "acknowledged",
                party=self.sender,
                sender=self.sender,
                message_id=self.message_id,
                type=row.type,
                detail={"client": self.client},
            )
        )
        return True

    def refused(self, tx: Tx, problem: Problem) -> None:
        """An acknowledgement of an unknown message changes nothing and is not an exchange event."""
