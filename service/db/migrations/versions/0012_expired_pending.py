"""an expired pending message keeps no body

`pending_messages.jws` becomes nullable: when a message's upload window closes, its
expiry drops the body (and its wrapped key) and keeps only what refuses later posts and
uploads of it (sender, id, digest, token, times). Bodies of rows expired before this
revision are dropped here. The partial index `ix_pending_open` on `expires_at` of the
rows not yet expired bounds each expiry run to the messages still waiting.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN = sa.text("expired_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("pending_messages") as batch:
        batch.alter_column("jws", existing_type=sa.LargeBinary(), nullable=True)
    op.execute(
        "UPDATE pending_messages SET jws = NULL, kek_id = NULL, wrapped_key = NULL,"
        " attachments = '[]', warnings = NULL WHERE expired_at IS NOT NULL"
    )
    op.create_index(
        "ix_pending_open",
        "pending_messages",
        ["expires_at"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_pending_open", table_name="pending_messages")
    op.execute("UPDATE pending_messages SET jws = '' WHERE jws IS NULL")
    with op.batch_alter_table("pending_messages") as batch:
        batch.alter_column("jws", existing_type=sa.LargeBinary(), nullable=False)
