"""encryption at rest of messages awaiting their attachments

`pending_messages` gets `kek_id` and `wrapped_key`, as `messages` did in 0009: with
both null, `jws` holds the message as received; otherwise it is sealed
(docs/privacy.md, "Encryption at rest"). Existing rows stay readable as they are.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_messages") as batch:
        batch.add_column(sa.Column("kek_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_messages") as batch:
        batch.drop_column("wrapped_key")
        batch.drop_column("kek_id")
