"""The answers of the local API (the agency's systems and operators), as pydantic models.

Every endpoint declares one of these as its `response_model`, so `/openapi.json`
describes each answer exactly and the node cannot answer outside it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api import examples as ex

# The delivery state of an outbound message: waiting for (another) attempt, delivered
# with the partner's receipt, refused by the partner (final), or failed after the
# last attempt.
MessageStatus = Literal["queued", "delivered", "refused", "failed"]
AttemptOutcome = Literal["delivered", "retry", "refused", "conflict"]
OutboxState = Literal["pending", "delivered", "failed"]


class _Answer(BaseModel):
    # `from` is a Python keyword: such members are written by alias.
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class Accepted(_Answer):
    """A message signed and queued for delivery."""

    id: str = Field(description="The message id (a UUID, version 7)")
    status: Literal["queued"]
    status_url: str = Field(description="Where the message's status is read")
    audit_index: int = Field(description="The index of the `send.queued` audit entry")
    removed_fields: list[str] = Field(
        description="Fields the partner's access rule removed before signing"
    )


class Attempt(_Answer):
    attempt: int
    at: float = Field(description="Unix seconds")
    outcome: AttemptOutcome
    http_status: int | None
    error: str | None = Field(description="The partner's problem code, or the failure")


class Receipt(_Answer):
    jws: str = Field(description="The partner's signed receipt, compact JWS")
    payload: dict[str, Any] | None = Field(description="Its decoded payload")
    partner_audit_index: int | None


class Reply(_Answer):
    id: str
    sender: str = Field(alias="from")
    type: str
    audit_index: int | None


class DeliveryProof(_Answer):
    """The partner's proof, held by this node, that it logged the delivered message
    (protocol v1.1; the file itself is served at `/v1/outbox/{id}/proof`)."""

    index: int = Field(description="The message's entry in the partner's log")
    tree_size: int = Field(description="The size of the partner's witnessed checkpoint")
    stored_at: float = Field(description="Unix seconds")


class OutboundStatus(_Answer):
    """An outbound message: its attempts, the partner's receipt, and replies received."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.STATUS_EXAMPLE]})

    id: str
    to: str
    type: str
    agreement: str
    purpose: str
    reply_to: str | None
    status: MessageStatus
    audit_index: int
    removed_fields: list[str]
    attempts: list[Attempt]
    next_attempt_at: float | None = Field(description="Unix seconds, while queued")
    last_error: str | None
    receipt: Receipt | None
    replies: list[Reply] = Field(description="Inbound messages whose reply_to is this one")
    delivery_proof: DeliveryProof | None = Field(
        description="Null until the partner's proof arrives (partners speaking v1.1)"
    )


class InboxMessage(_Answer):
    id: str
    sender: str = Field(alias="from")
    type: str
    agreement: str
    purpose: str
    reply_to: str | None
    received_at: float = Field(description="Unix seconds")
    audit_index: int
    acked: bool
    body: dict[str, Any] | None = Field(description="The body; null once purged")
    purged: bool


class InboxPage(_Answer):
    """Accepted inbound messages, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.INBOX_EXAMPLE]})

    messages: list[InboxMessage]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page")


class Acknowledged(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACK_EXAMPLE]})

    id: str
    sender: str = Field(alias="from")
    acked: Literal[True]
    changed: bool = Field(description="False when it had been acknowledged before")


class OutboxItem(_Answer):
    message_id: str
    recipient: str
    type: str
    status: MessageStatus
    attempts: int
    last_error: str | None
    created_at: float
    next_attempt_at: float | None


class OperatorOutbox(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.OPERATOR_OUTBOX_EXAMPLE]})

    state: OutboxState
    messages: list[OutboxItem]


class Requeued(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.RETRY_EXAMPLE]})

    id: str
    status: Literal["queued"]


# -- the auditors' API -----------------------------------------------------------------


class AuditEntry(_Answer):
    """One entry of the log: its index, the exact hashed bytes, and the entry they encode."""

    index: int
    leaf_data: str = Field(description="The leaf data: RFC 8785 JSON of `entry`, base64")
    entry: dict[str, Any]


class EntriesPage(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ENTRIES_EXAMPLE]})

    entries: list[AuditEntry]


class InclusionProof(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INCLUSION_EXAMPLE]})

    index: int
    size: int
    hashes: list[str] = Field(description="The RFC 9162 audit path, leaf to root, base64")


class ConsistencyProof(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSISTENCY_EXAMPLE]})

    from_: int = Field(alias="from")
    to: int
    hashes: list[str] = Field(description="The RFC 9162 consistency proof, base64")


class SearchPage(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.SEARCH_EXAMPLE]})

    entries: list[AuditEntry] = Field(description="Newest first")
    next_cursor: int | None = Field(description="Pass as `cursor` for older entries")


# -- health and keys -----------------------------------------------------------------


class Health(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.HEALTH_EXAMPLE]})

    status: Literal["ok"]


class Ready(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.READY_EXAMPLE]})

    status: Literal["ready"]
    party: str
    keys: list[str] = Field(description="The kids of the node's signing keys")


class JwkSet(_Answer):
    """An RFC 7517 JWK Set of public keys."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.JWKS_EXAMPLE]})

    keys: list[dict[str, Any]]


class Disclosure(_Answer):
    """One message in or out that concerns the person asked about."""

    message_id: str
    direction: Literal["in", "out"] = Field(description="in: received from, out: sent to")
    partner: str
    at: float = Field(description="Unix seconds the message was stored (out: queued)")
    type: str
    agreement: str
    purpose: str
    reply_to: str | None
    status: str = Field(
        description="The message's state: accepted (in); queued, delivered, refused, failed (out)"
    )
    audit_index: int = Field(description="The index of the message's audit entry")
    fields: list[str] = Field(
        description="Dotted paths of the fields the message carried, after the partner's field rule"
    )
    removed_fields: list[str] = Field(
        description="Fields the partner's rule removed before signing (out)"
    )
    via: Literal["subject", "reply"] = Field(
        description="subject: the message names the person; reply: it answers, or is answered by, one that does"
    )


class Disclosures(_Answer):
    """Which partners received or sent data about a person, when, under what, which fields."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISCLOSURES_EXAMPLE]})

    subjects: list[str] = Field(description="The keyed digests looked up (HMAC-SHA-256, hex)")
    disclosures: list[Disclosure]
    truncated: bool = Field(description="More messages matched than one answer lists")
    audit_index: int = Field(description="The index of this query's `privacy.query` audit entry")


class LegalHold(_Answer):
    """A legal hold in force: no message of the case is purged."""

    case_reference: str
    reason: str
    placed_at: float = Field(description="Unix seconds")
    placed_by: str


class LegalHolds(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.HOLDS_EXAMPLE]})

    holds: list[LegalHold]


class LegalHoldChanged(_Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.HOLD_CHANGED_EXAMPLE]})

    case_reference: str
    active: bool = Field(description="Whether the case is now under a hold")
    audit_index: int = Field(description="The index of the change's audit entry")
