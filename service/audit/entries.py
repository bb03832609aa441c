"""Audit events and the JSON entry that becomes a leaf of the log.

An entry never holds personal data: parties, message ids, types, agreement,
purpose, outcome, rule, the SHA-256 digest of the message bytes, and a small
`detail` object of non-personal facts (field paths removed, HTTP status, counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.clock import rfc3339

# Stable event names (documented in docs/auditors.md).
MESSAGE_ACCEPTED = "message.accepted"
MESSAGE_REFUSED = "message.refused"
MESSAGE_REFUSED_AGGREGATE = "message.refused-aggregate"
MESSAGE_REDELIVERED = "message.redelivered"
MESSAGE_AWAITING = "message.awaiting-attachments"
ATTACHMENT_STORED = "attachment.stored"
ATTACHMENT_REFUSED = "attachment.refused"
FILE_STORED = "file.stored"
MESSAGE_QUEUED = "message.queued"
MESSAGE_REQUEUED = "message.requeued"
SEND_REFUSED = "message.send-refused"
DELIVERY_ATTEMPT = "delivery.attempt"
RECEIPT_RECEIVED = "receipt.received"
CONFIG_LOADED = "config.loaded"
CONFIG_CHANGED = "config.changed"
AUDIT_QUERY = "audit.query"
RETENTION_PURGE = "retention.purge"
LEGAL_HOLD_PLACED = "retention.hold-placed"
LEGAL_HOLD_RELEASED = "retention.hold-released"
INBOX_ACK = "inbox.ack"
PRIVACY_QUERY = "privacy.query"
CONSOLE_SIGN_IN = "console.sign-in"
CONSOLE_SIGN_OUT = "console.sign-out"
PRIVACY_KEK_ROTATED = "privacy.kek-rotated"

ENTRY_MEMBERS = (
    "index",
    "time",
    "node",
    "event",
    "outcome",
    "party",
    "from",
    "to",
    "message_id",
    "type",
    "agreement",
    "purpose",
    "code",
    "rule",
    "digest",
    "detail",
)


@dataclass(frozen=True)
class AuditEvent:
    """What happened; the log adds index, time and node."""

    event: str
    outcome: str
    party: str | None = None
    sender: str | None = None
    recipient: str | None = None
    message_id: str | None = None
    type: str | None = None
    agreement: str | None = None
    purpose: str | None = None
    code: str | None = None
    rule: str | None = None
    digest: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def entry_dict(
    event: AuditEvent, *, index: int, time: float, node: str, time_text: str | None = None
) -> dict[str, Any]:
    return {
        "index": index,
        "time": time_text if time_text is not None else rfc3339(time),
        "node": node,
        "event": event.event,
        "outcome": event.outcome,
        "party": event.party,
        "from": event.sender,
        "to": event.recipient,
        "message_id": event.message_id,
        "type": event.type,
        "agreement": event.agreement,
        "purpose": event.purpose,
        "code": event.code,
        "rule": event.rule,
        "digest": event.digest,
        "detail": dict(event.detail),
    }
