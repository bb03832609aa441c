"""delivery proofs: proofs held per outbound message, partners' checkpoints, proofs sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_proofs",
        sa.Column(
            "message_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("receiver", sa.String(length=40), nullable=False),
        sa.Column("audit_index", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.Column("proofs_message_pk", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"]),
        sa.PrimaryKeyConstraint("message_pk"),
    )
    op.create_table(
        "partner_checkpoints",
        sa.Column("party", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("verified_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("party"),
    )
    op.create_table(
        "proofs_sent",
        sa.Column("party", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("party"),
    )


def downgrade() -> None:
    op.drop_table("proofs_sent")
    op.drop_table("partner_checkpoints")
    op.drop_table("delivery_proofs")
