"""stored bodies: an index of the messages whose body is still stored, by age

The retention purge looks for stored bodies older than a cutoff. Without this index
it read every message row of the direction and type it purges, bodies purged long ago
included, on every run and under the write lock: a cost that grew with the node's
history (docs/operators.md, "Retention").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STORED = sa.text("jws IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_messages_stored",
        "messages",
        ["created_at"],
        sqlite_where=STORED,
        postgresql_where=STORED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_stored", table_name="messages")
