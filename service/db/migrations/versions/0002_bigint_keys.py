"""64-bit keys

Message and delivery attempt keys are one more than an audit index (which is already
64-bit), so at 2**31 audit entries a 32-bit key can no longer be stored. Every key, every
column referring to one, and the Unix-seconds `iat` columns (which pass 2**31 in 2038)
become BIGINT on PostgreSQL, and the sequences behind the generated keys count as far.
SQLite stores every INTEGER in up to 64 bits already (and an INTEGER PRIMARY KEY is the
rowid, which it must stay), so there this revision changes nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (table, column): columns referring to a key first, then the keys they refer to.
COLUMNS = (
    ("outbox", "message_pk"),
    ("signed_versions", "message_pk"),
    ("delivery_attempts", "message_pk"),
    ("delivery_attempts", "pk"),
    ("messages", "pk"),
    ("checkpoints", "pk"),
    ("messages", "iat"),
    ("signed_versions", "iat"),
)
# Keys the database may generate itself (SERIAL in revision 0001).
GENERATED = (("messages", "pk"), ("delivery_attempts", "pk"), ("checkpoints", "pk"))


def _alter(to: type[sa.Integer]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    new, old = (
        (sa.BigInteger(), sa.Integer()) if to is sa.BigInteger else (sa.Integer(), sa.BigInteger())
    )
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)
    kind = "bigint" if to is sa.BigInteger else "integer"
    for table, column in GENERATED:
        sequence = bind.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}
        ).scalar()
        if sequence is not None:
            # The name comes from the catalogue, already quoted where it needs to be.
            op.execute(f"ALTER SEQUENCE {sequence} AS {kind}")


def upgrade() -> None:
    _alter(sa.BigInteger)


def downgrade() -> None:
    # Fails, changing nothing, once a value no longer fits in 32 bits.
    _alter(sa.Integer)
