"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_entries",
        sa.Column(
            "idx",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("party", sa.String(length=40), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("leaf_data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_message", ["message_id"], unique=False)
        batch_op.create_index("ix_audit_outcome", ["outcome", "idx"], unique=False)
        batch_op.create_index("ix_audit_party", ["party", "idx"], unique=False)
        batch_op.create_index("ix_audit_time", ["time", "idx"], unique=False)
        batch_op.create_index("ix_audit_type", ["type", "idx"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_at", sa.Float(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("last_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer()),
            sa.column("size", sa.BigInteger()),
            sa.column("root", sa.LargeBinary()),
            sa.column("checkpoint_size", sa.BigInteger()),
            sa.column("checkpoint_at", sa.Float()),
            sa.column("frontier", sa.LargeBinary()),
            sa.column("last_time", sa.Float()),
        ),
        # The empty tree: RFC 9162 MTH of no leaves is SHA-256 of the empty string.
        [
            {
                "id": 1,
                "size": 0,
                "root": hashlib.sha256(b"").digest(),
                "checkpoint_size": 0,
                "checkpoint_at": 0.0,
                "frontier": b"",
                "last_time": 0.0,
            }
        ],
    )
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("k", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "k"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_size"), ["size"], unique=False)

    op.create_table(
        "messages",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("sender", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("agreement", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("reply_to", sa.String(length=36), nullable=True),
        sa.Column("iat", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("audit_index", sa.BigInteger(), nullable=False),
        sa.Column("removed_fields", sa.Text(), nullable=True),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("receipt_audit_index", sa.BigInteger(), nullable=True),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.Column("purged_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("sender", "message_id", name="uq_messages_sender_id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_created", ["created_at"], unique=False)
        batch_op.create_index("ix_messages_inbox", ["direction", "type", "pk"], unique=False)
        batch_op.create_index("ix_messages_reply_to", ["reply_to"], unique=False)

    op.create_table(
        "node_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("party", sa.String(length=40), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("party"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["messages.pk"],
        ),
        sa.PrimaryKeyConstraint("pk"),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_attempts_message", ["message_pk", "attempt"], unique=False
        )

    op.create_table(
        "signed_versions",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("iat", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"]),
        sa.PrimaryKeyConstraint("message_pk", "version"),
    )
    op.create_table(
        "outbox",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["messages.pk"],
        ),
        sa.PrimaryKeyConstraint("message_pk"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    op.drop_table("signed_versions")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_attempts_message")

    op.drop_table("delivery_attempts")
    op.drop_table("rate_buckets")
    op.drop_table("node_state")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_reply_to")
        batch_op.drop_index("ix_messages_inbox")
        batch_op.drop_index("ix_messages_created")

    op.drop_table("messages")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_size"))

    op.drop_table("checkpoints")
    op.drop_table("audit_nodes")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_type")
        batch_op.drop_index("ix_audit_time")
        batch_op.drop_index("ix_audit_party")
        batch_op.drop_index("ix_audit_outcome")
        batch_op.drop_index("ix_audit_message")

    op.drop_table("audit_entries")
