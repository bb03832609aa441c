"""attachments (protocol v1.1)

`attachments` lists the files each message names (their bytes live in the
content-addressed attachment store, not in the database); `pending_messages` holds
verified messages whose attachments are still being uploaded; `files` the files the
agency's systems handed the node for its outbound messages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("message_pk", _key(), sa.ForeignKey("messages.pk"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("purged_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("message_pk", "position"),
    )
    op.create_index("ix_attachments_digest", "attachments", ["digest"])
    op.create_table(
        "pending_messages",
        sa.Column("sender", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.LargeBinary(), nullable=False),
        sa.Column("upload_token", sa.String(length=64), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("expired_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("sender", "message_id"),
    )
    op.create_table(
        "files",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("pending_messages")
    op.drop_index("ix_attachments_digest", table_name="attachments")
    op.drop_table("attachments")
