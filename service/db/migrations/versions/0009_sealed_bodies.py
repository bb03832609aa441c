"""encryption at rest: the KEK id and wrapped data key beside each stored body

`messages` and `signed_versions` get `kek_id` and `wrapped_key`: with both null, `jws`
holds the bytes as received or signed; otherwise `jws` holds the body sealed with
AES-256-GCM under a data key that `wrapped_key` holds wrapped by the KEK `kek_id`
(docs/privacy.md, "Encryption at rest"). Existing rows stay readable as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TABLES = ("messages", "signed_versions")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("kek_id", sa.String(length=32), nullable=True))
            batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("wrapped_key")
            batch.drop_column("kek_id")
