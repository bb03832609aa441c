"""Database tables. SQLModel declares them; the hot paths use their Core tables.

The schema itself is owned by the Alembic migrations in `migrations/`; a test checks
that the migrations and these declarations agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel


def int64() -> TypeEngine[int]:
    """A 64-bit integer: BIGINT, and INTEGER on SQLite (already 64-bit there, and an
    INTEGER PRIMARY KEY is the rowid, so no second unique index is kept)."""
    return BigInteger().with_variant(Integer, "sqlite")


def message_key(*, primary_key: bool = False) -> Column[int]:
    """A column referring to `messages.pk`."""
    return Column(int64(), ForeignKey("messages.pk"), primary_key=primary_key, nullable=False)


class MessageRow(SQLModel, table=True):
    """A message this node received (direction `in`) or sends (direction `out`)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender", "message_id", name="uq_messages_sender_id"),
        Index("ix_messages_inbox", "direction", "type", "pk"),
        Index("ix_messages_reply_to", "reply_to"),
        Index("ix_messages_created", "created_at"),
        # The messages whose body is still stored, by age: what the retention purge reads
        # (exchange/retention.py), however many bodies it purged before.
        Index(
            "ix_messages_stored",
            "created_at",
            sqlite_where=text("jws IS NOT NULL"),
            postgresql_where=text("jws IS NOT NULL"),
        ),
        # The inbox backlog (unacknowledged inbound messages), small however many are acked.
        Index(
            "ix_messages_unacked",
            "direction",
            "sender",
            "type",
            "created_at",
            sqlite_where=text("acked_at IS NULL"),
            postgresql_where=text("acked_at IS NULL"),
        ),
    )

    # Given by the writer: one more than `audit_index` (see ledger.committer.row_key).
    pk: int | None = Field(default=None, sa_column=Column(int64(), primary_key=True))
    direction: str = Field(max_length=3)
    sender: str = Field(max_length=40)
    recipient: str = Field(max_length=40)
    message_id: str = Field(max_length=36)
    type: str = Field(max_length=64)
    agreement: str = Field(max_length=64)
    purpose: str = Field(max_length=64)
    reply_to: str | None = Field(default=None, max_length=36)
    iat: int = Field(sa_column=Column(int64(), nullable=False))
    digest: str = Field(max_length=64)
    # The body as received or signed; sealed when `kek_id` is set (privacy/atrest.py).
    jws: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    kek_id: str | None = Field(default=None, max_length=32)
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: str = Field(max_length=16)
    rule_id: str = Field(max_length=64)
    created_at: float
    audit_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    removed_fields: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    receipt: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    receipt_audit_index: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    acked_at: float | None = None
    purged_at: float | None = None


class OutboxRow(SQLModel, table=True):
    """Delivery state of an outbound message (transactional outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        # A state's messages oldest first (operator API and console), without a sort.
        Index("ix_outbox_state", "state", "created_at"),
    )

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    state: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: float
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: float


class DeliveryAttemptRow(SQLModel, table=True):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_message", "message_pk", "attempt"),)

    # Given by the writer: one more than the index of the attempt's audit entry.
    pk: int | None = Field(default=None, sa_column=Column(int64(), primary_key=True))
    message_pk: int = Field(sa_column=message_key())
    attempt: int
    at: float
    outcome: str = Field(max_length=16)
    http_status: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration_ms: float


class AuditEntryRow(SQLModel, table=True):
    """One leaf of the audit log. `leaf_data` is exactly the hashed bytes (JCS)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_party", "party", "idx"),
        Index("ix_audit_type", "type", "idx"),
        Index("ix_audit_outcome", "outcome", "idx"),
        Index("ix_audit_message", "message_id"),
        Index("ix_audit_time", "time", "idx"),
        # The console's refusal and rate-limit counts over a time window (an index range).
        Index("ix_audit_event", "event", "idx", "code"),
    )

    idx: int = Field(sa_column=Column(int64(), primary_key=True, autoincrement=False))
    time: float
    event: str = Field(max_length=40)
    party: str | None = Field(default=None, max_length=40)
    message_id: str | None = Field(default=None, max_length=36)
    type: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=32)
    code: str | None = Field(default=None, max_length=40)
    leaf_data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditNodeRow(SQLModel, table=True):
    """Hash of the perfect subtree covering leaves [k * 2**level, (k + 1) * 2**level)."""

    __tablename__ = "audit_nodes"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    k: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditHeadRow(SQLModel, table=True):
    """The single row every append locks: tree size and root, last checkpoint."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    checkpoint_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    checkpoint_at: float
    # The right edge of the tree (hashes of the perfect subtrees covering [0, size)),
    # concatenated, so an append needs no node lookups; and the last entry's time,
    # which entry times never go below (time order equals index order).
    frontier: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    last_time: float = 0.0


class CheckpointRow(SQLModel, table=True):
    """Every signed checkpoint the node issued."""

    __tablename__ = "checkpoints"

    pk: int | None = Field(default=None, sa_column=Column(int64(), primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issued_at: float
    note: str = Field(sa_column=Column(Text, nullable=False))


class RateBucketRow(SQLModel, table=True):
    """Token bucket of one partner; updated under the append lock, so shared by all processes."""

    __tablename__ = "rate_buckets"

    party: str = Field(primary_key=True, max_length=40)
    tokens: float
    updated_at: float


class NodeStateRow(SQLModel, table=True):
    """Small key/value facts, e.g. the digest of the configuration last loaded."""

    __tablename__ = "node_state"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class WitnessLogRow(SQLModel, table=True):
    """As a witness: the latest checkpoint this node cosigned for one log (its origin).

    Checked and updated in one transaction with the row locked, so no two cosignings
    of one log can interleave (docs/protocol.md, "Witnessing").
    """

    __tablename__ = "witness_logs"

    origin: str = Field(primary_key=True, max_length=255)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: float
    inconsistent: int = 0
    inconsistent_at: float | None = None


class WitnessPeerRow(SQLModel, table=True):
    """As a witnessed log: what this node knows of one of its witnesses, shared by processes."""

    __tablename__ = "witness_peers"

    # The witness's key name and key id, `<name>+<hex id>`: a new key starts afresh.
    witness: str = Field(primary_key=True, max_length=300)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    cosigned_pk: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    failures: int = 0
    next_attempt_at: float = 0.0
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class WitnessCosignatureRow(SQLModel, table=True):
    """A verified cosignature of one of this node's checkpoints."""

    __tablename__ = "witness_cosignatures"

    checkpoint_pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(primary_key=True, max_length=300)
    line: str = Field(sa_column=Column(Text, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: float


messages = MessageRow.__table__  # type: ignore[attr-defined]
outbox = OutboxRow.__table__  # type: ignore[attr-defined]
delivery_attempts = DeliveryAttemptRow.__table__  # type: ignore[attr-defined]
audit_entries = AuditEntryRow.__table__  # type: ignore[attr-defined]
audit_nodes = AuditNodeRow.__table__  # type: ignore[attr-defined]
audit_head = AuditHeadRow.__table__  # type: ignore[attr-defined]
checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
rate_buckets = RateBucketRow.__table__  # type: ignore[attr-defined]
node_state = NodeStateRow.__table__  # type: ignore[attr-defined]
witness_logs = WitnessLogRow.__table__  # type: ignore[attr-defined]
witness_peers = WitnessPeerRow.__table__  # type: ignore[attr-defined]
witness_cosignatures = WitnessCosignatureRow.__table__  # type: ignore[attr-defined]


class SignedVersionRow(SQLModel, table=True):
    """Every signed copy of an outbound message.

    A queued message is re-signed with a fresh `iat` when its last copy would be stale
    at the partner; older copies are kept so that a lost receipt can be recovered by
    re-sending the exact bytes the partner accepted (see docs/protocol.md).
    """

    __tablename__ = "signed_versions"

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    iat: int = Field(sa_column=Column(int64(), nullable=False))
    digest: str = Field(max_length=64)
    # Sealed when `kek_id` is set (privacy/atrest.py).
    jws: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kek_id: str | None = Field(default=None, max_length=32)
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


signed_versions = SignedVersionRow.__table__  # type: ignore[attr-defined]


class DeliveryProofRow(SQLModel, table=True):
    """As a sender: a verified C2SP tlog-proof that the receiver logged one outbound message.

    Protocol v1.1 (docs/protocol.md, "Protocol v1.1: delivery proofs"). `proof` is the
    whole `.tlog-proof` text, checkable offline with the receiver's pinned key and the
    witness policy; `tree_size` is the size of its cosigned checkpoint.
    """

    __tablename__ = "delivery_proofs"

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    receiver: str = Field(max_length=40)
    audit_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    proof: str = Field(sa_column=Column(Text, nullable=False))
    proofs_message_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    stored_at: float


class PartnerCheckpointRow(SQLModel, table=True):
    """As a sender: the largest cosigned checkpoint of a partner's log this node verified.

    Each later one must be consistent with it; the one of a delivery proof is kept with
    the proof itself.
    """

    __tablename__ = "partner_checkpoints"

    party: str = Field(primary_key=True, max_length=40)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    verified_at: float


class ProofsSentRow(SQLModel, table=True):
    """As a receiver: the size of the last checkpoint whose proofs went to a partner."""

    __tablename__ = "proofs_sent"

    party: str = Field(primary_key=True, max_length=40)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sent_at: float


delivery_proofs = DeliveryProofRow.__table__  # type: ignore[attr-defined]
partner_checkpoints = PartnerCheckpointRow.__table__  # type: ignore[attr-defined]
proofs_sent = ProofsSentRow.__table__  # type: ignore[attr-defined]


class DisclosureRow(SQLModel, table=True):
    """A message in or out that concerns a person: to or from whom, under what, which fields.

    Written in the same commit as the message. It holds no personal value: the persons
    are in `disclosure_subjects` as keyed digests, the fields as dotted paths. It is
    kept when the message's body is purged, so the question "who received what about
    this person" can still be answered."""

    __tablename__ = "disclosures"
    __table_args__ = (
        Index("ix_disclosures_message", "partner", "message_id"),
        Index("ix_disclosures_reply", "partner", "reply_to"),
    )

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    direction: str = Field(max_length=3)
    partner: str = Field(max_length=40)
    message_id: str = Field(max_length=36)
    reply_to: str | None = Field(default=None, max_length=36)
    type: str = Field(max_length=64)
    agreement: str = Field(max_length=64)
    purpose: str = Field(max_length=64)
    disclosed_at: float
    audit_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    fields: str = Field(sa_column=Column(Text, nullable=False))
    removed_fields: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class DisclosureSubjectRow(SQLModel, table=True):
    """One person a disclosure concerns, as the hex HMAC-SHA-256 of one of their
    identifiers under the node's subject key (service/privacy/subjects.py)."""

    __tablename__ = "disclosure_subjects"

    digest: str = Field(primary_key=True, max_length=64)
    message_pk: int = Field(sa_column=message_key(primary_key=True))


disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
disclosure_subjects = DisclosureSubjectRow.__table__  # type: ignore[attr-defined]


class MessageCaseRow(SQLModel, table=True):
    """The case a message belongs to: the SHA-256 (hex) of its body's `case_reference`,
    written with the message, so that a legal hold on the case finds it after its body
    is no longer read."""

    __tablename__ = "message_cases"
    __table_args__ = (Index("ix_message_cases_case", "case_digest"),)

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    case_digest: str = Field(max_length=64)


class LegalHoldRow(SQLModel, table=True):
    """A legal hold: while `released_at` is null, no message of the case is purged."""

    __tablename__ = "legal_holds"

    case_digest: str = Field(primary_key=True, max_length=64)
    case_reference: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_at: float
    placed_by: str = Field(max_length=64)
    released_at: float | None = None
    released_by: str | None = Field(default=None, max_length=64)


message_cases = MessageCaseRow.__table__  # type: ignore[attr-defined]
legal_holds = LegalHoldRow.__table__  # type: ignore[attr-defined]


class AttachmentRow(SQLModel, table=True):
    """A file a message names (protocol v1.1): its bytes are in the attachment store
    under `digest`, never in this table. `purged_at` is set when the message's body is
    purged; the bytes are then deleted once no unpurged message names them."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_digest", "digest"),)

    message_pk: int = Field(sa_column=message_key(primary_key=True))
    position: int = Field(sa_column=Column(Integer, primary_key=True, nullable=False))
    digest: str = Field(max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = Field(max_length=127)
    name: str = Field(sa_column=Column(Text, nullable=False))
    purged_at: float | None = None


class PendingMessageRow(SQLModel, table=True):
    """A verified message awaiting its attachments (docs/protocol.md, 'The transfer'):
    not accepted, not in the inbox, no receipt. `attachments` is the JSON list of the
    declared files; `upload_token` authorizes their uploads until `expires_at`. An
    expired row (`expired_at`) keeps no body, no files list and no warnings."""

    __tablename__ = "pending_messages"
    # The rows still waiting, by the end of their window: what each expiry run reads.
    __table_args__ = (
        Index(
            "ix_pending_open",
            "expires_at",
            sqlite_where=text("expired_at IS NULL"),
            postgresql_where=text("expired_at IS NULL"),
        ),
    )

    sender: str = Field(primary_key=True, max_length=40)
    message_id: str = Field(primary_key=True, max_length=36)
    digest: str = Field(max_length=64)
    # As received; sealed when `kek_id` is set (privacy/atrest.py). Null once expired:
    # the expiry drops the body and keeps what refuses later posts and uploads of it.
    jws: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    kek_id: str | None = Field(default=None, max_length=32)
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    upload_token: str = Field(max_length=64)
    attachments: str = Field(sa_column=Column(Text, nullable=False))
    # The JSON list of the paths of the body's warnings, found when it was validated at
    # its first post (for its `message.accepted` entry, docs/protocol.md 'The transfer');
    # null in rows made before 0011, whose completion post is validated again.
    warnings: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: float
    expires_at: float
    expired_at: float | None = None


class FileRow(SQLModel, table=True):
    """A file the agency's systems handed the node for its outbound messages
    (POST /v1/files): its bytes are in the attachment store under `digest`."""

    __tablename__ = "files"

    digest: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = Field(max_length=127)
    stored_at: float


attachments = AttachmentRow.__table__  # type: ignore[attr-defined]
pending_messages = PendingMessageRow.__table__  # type: ignore[attr-defined]
files = FileRow.__table__  # type: ignore[attr-defined]


class ConsoleSessionRow(SQLModel, table=True):
    """An open console session (docs/console.md): one row per sign-in, deleted at
    sign-out, when its token leaves the configuration, or after it expired. A session
    cookie without its row is refused, by every process of the node."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    # SHA-256 (hex) of the cookie's random session id: the database never holds the id.
    sid_digest: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    fingerprint: str = Field(max_length=16)
    opened_at: float
    expires_at: float


console_sessions = ConsoleSessionRow.__table__  # type: ignore[attr-defined]


class ConsoleDailyRow(SQLModel, table=True):
    """The overview's counts of one day that is over (service/console/daily.py): a
    `done` row, then per `messages` key (direction|partner|type) and `latency` bucket."""

    __tablename__ = "console_daily"

    day: int = Field(sa_column=Column(BigInteger, primary_key=True))
    metric: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


console_daily = ConsoleDailyRow.__table__  # type: ignore[attr-defined]
