"""console: open sessions, kept daily counts, indexes for its bounded counts

`console_sessions` holds one row per console sign-in (the SHA-256 of its random session
id, the token's name and fingerprint, its expiry); a session cookie whose row is gone
(signed out, token removed from the configuration, expired) is refused by every
process of the node (docs/console.md). `ix_audit_event` (event, idx, code) lets the
console count refusals and rate-limit hits in a time window, which is an index range
(docs/console.md, Overview and Partners), without reading the entries themselves.
`console_daily` keeps the overview's counts of each day that is over
(service/console/daily.py), and the partial index `ix_messages_unacked` holds only the
inbox backlog, the messages not acknowledged yet. `ix_outbox_state` (state, created_at)
lists a delivery state's messages oldest first without sorting all of them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("sid_digest", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sid_digest"),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_console_sessions_expires", ["expires_at"], unique=False)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event", ["event", "idx", "code"], unique=False)
    op.create_table(
        "console_daily",
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "metric", "key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_state", ["state", "created_at"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_unacked",
            ["direction", "sender", "type", "created_at"],
            unique=False,
            sqlite_where=sa.text("acked_at IS NULL"),
            postgresql_where=sa.text("acked_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_unacked")
    op.drop_table("console_daily")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_expires")
    op.drop_table("console_sessions")
