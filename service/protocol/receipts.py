"""Receipts (docs/protocol.md section 4): the signed answer to an accepted message.

A receipt binds the receiver to the exact bytes it accepted, through the
SHA-256 digest of the JWS compact serialization, and to the audit log index at
which it recorded them.
"""

from __future__ import annotations

import hashlib

from service.protocol.b64 import b64url_encode
from service.protocol.envelope import PROTOCOL_VERSION, Envelope

RECEIPT_TYPE = "receipt"
RECEIPT_STATUS = "accepted"
DIGEST_PREFIX = "sha-256:"
RECEIPT_BODY_MEMBERS = frozenset({"status", "digest", "audit_index"})
# Protocol v1.1: the receipt of a message with attachments lists them as stored.
ATTACHMENTS_MEMBER = "attachments"
STORED = "stored"


class ReceiptError(ValueError):
    """A receipt does not answer the message it is claimed to answer."""


def sha256_digest(data: bytes) -> str:
    """`sha-256:` and the unpadded base64url SHA-256 of `data`: every digest the node
    records or sends has this form."""
    return DIGEST_PREFIX + b64url_encode(hashlib.sha256(data).digest())


def message_digest(jws_bytes: bytes) -> str:
    """The digest of the exact JWS bytes of a message."""
    return sha256_digest(jws_bytes)


def receipt_envelope(
    *,
    received: Envelope,
    node_party: str,
    message_id: str,
    iat: int,
    digest: str,
    audit_index: int,
    attachments: list[dict[str, object]] | None = None,
) -> Envelope:
    """The receipt this node signs for `received`; `attachments` (digest and size of
    each file, in body order) when the message had any."""
    body: dict[str, object] = {
        "status": RECEIPT_STATUS,
        "digest": digest,
        "audit_index": audit_index,
    }
    if attachments:
        body[ATTACHMENTS_MEMBER] = [
            {"digest": a["digest"], "size": a["size"], "status": STORED} for a in attachments
        ]
    return Envelope(
        v=PROTOCOL_VERSION,
        id=message_id,
        iss=node_party,
        aud=received.iss,
        iat=iat,
        type=RECEIPT_TYPE,
        agreement=received.agreement,
        purpose=received.purpose,
        reply_to=received.id,
        body=body,
    )


def _envelope_mismatches(receipt: Envelope, sent: Envelope) -> list[str]:
    expected = {
        "type": (receipt.type, RECEIPT_TYPE),
        "iss": (receipt.iss, sent.aud),
        "aud": (receipt.aud, sent.iss),
        "reply_to": (receipt.reply_to, sent.id),
        "agreement": (receipt.agreement, sent.agreement),
        "purpose": (receipt.purpose, sent.purpose),
    }
    return [
        f"{name} is {got!r}, expected {want!r}"
        for name, (got, want) in expected.items()
        if got != want
    ]


def _audit_index(body: dict[str, object]) -> int | None:
    index = body.get("audit_index")
    return index if type(index) is int and index >= 0 else None


def _expected_attachments(sent: Envelope) -> list[dict[str, object]]:
    items = sent.body.get(ATTACHMENTS_MEMBER) if isinstance(sent.body, dict) else None
    if not isinstance(items, list):
        return []
    return [{"digest": i["digest"], "size": i["size"], "status": STORED} for i in items]


def _body_mismatches(body: dict[str, object], sent: Envelope, sent_bytes: bytes) -> list[str]:
    expected = _expected_attachments(sent)
    members = RECEIPT_BODY_MEMBERS | {ATTACHMENTS_MEMBER} if expected else RECEIPT_BODY_MEMBERS
    if body.keys() != members:
        return [f"body members are {sorted(body)}, expected {sorted(members)}"]
    problems = []
    if expected and body[ATTACHMENTS_MEMBER] != expected:
        problems.append("body attachments are not every attachment sent, as stored")
    if body["status"] != RECEIPT_STATUS:
        problems.append(f"body status is {body['status']!r}, expected {RECEIPT_STATUS!r}")
    if body["digest"] != message_digest(sent_bytes):
        problems.append("body digest does not match the bytes sent")
    if _audit_index(body) is None:
        problems.append("body audit_index is not a non-negative integer")
    return problems


def check_receipt(receipt: Envelope, *, sent: Envelope, sent_bytes: bytes) -> int:
    """Check that `receipt` answers `sent` (sent as `sent_bytes`); return its audit index."""
    problems = _envelope_mismatches(receipt, sent) + _body_mismatches(
        receipt.body, sent, sent_bytes
    )
    index = _audit_index(receipt.body)
    if problems or index is None:
        raise ReceiptError("receipt does not answer the message: " + "; ".join(problems))
    return index
