"""witness tables: logs this node witnesses, its own witnesses, and their cosignatures

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witness_logs",
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("inconsistent", sa.Integer(), nullable=False),
        sa.Column("inconsistent_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("origin"),
    )
    op.create_table(
        "witness_peers",
        sa.Column("witness", sa.String(length=300), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("cosigned_pk", sa.BigInteger(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_success_at", sa.Float(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("witness"),
    )
    op.create_table(
        "witness_cosignatures",
        sa.Column("checkpoint_pk", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=300), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("checkpoint_pk", "witness"),
    )


def downgrade() -> None:
    op.drop_table("witness_cosignatures")
    op.drop_table("witness_peers")
    op.drop_table("witness_logs")
