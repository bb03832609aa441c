"""personal data: disclosure accounting, legal holds

`disclosures` records every message in or out that concerns a person (partner,
direction, time, agreement, purpose, the fields disclosed) and `disclosure_subjects`
the persons it concerns, as keyed digests of their identifiers; neither holds a
personal value (docs/privacy.md). `message_cases` links a message to the digest of its
case reference and `legal_holds` holds the cases whose messages are not purged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("message_pk", _key(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("partner", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("reply_to", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("agreement", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("disclosed_at", sa.Float(), nullable=False),
        sa.Column("audit_index", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("removed_fields", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"]),
        sa.PrimaryKeyConstraint("message_pk"),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index("ix_disclosures_message", ["partner", "message_id"], unique=False)
        batch_op.create_index("ix_disclosures_reply", ["partner", "reply_to"], unique=False)
    op.create_table(
        "disclosure_subjects",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("message_pk", _key(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"]),
        sa.PrimaryKeyConstraint("digest", "message_pk"),
    )
    op.create_table(
        "message_cases",
        sa.Column("message_pk", _key(), nullable=False),
        sa.Column("case_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.pk"]),
        sa.PrimaryKeyConstraint("message_pk"),
    )
    with op.batch_alter_table("message_cases", schema=None) as batch_op:
        batch_op.create_index("ix_message_cases_case", ["case_digest"], unique=False)
    op.create_table(
        "legal_holds",
        sa.Column("case_digest", sa.String(length=64), nullable=False),
        sa.Column("case_reference", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", sa.Float(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("released_at", sa.Float(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("case_digest"),
    )


def downgrade() -> None:
    op.drop_table("legal_holds")
    with op.batch_alter_table("message_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_message_cases_case")
    op.drop_table("message_cases")
    op.drop_table("disclosure_subjects")
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosures_reply")
        batch_op.drop_index("ix_disclosures_message")
    op.drop_table("disclosures")
