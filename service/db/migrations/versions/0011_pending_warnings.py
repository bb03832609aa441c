"""the warnings of a message awaiting its attachments

`pending_messages` gets `warnings`: the JSON list of the paths of the warnings its body
had when it was validated at its first post. The completion post of those same bytes
is then not validated again (docs/protocol.md, 'The transfer', step 5), and its
`message.accepted` entry lists these paths. Existing rows keep null: their completion
post is validated as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_messages") as batch:
        batch.add_column(sa.Column("warnings", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_messages") as batch:
        batch.drop_column("warnings")
