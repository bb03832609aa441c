"""Alembic environment: runs on the connection the node hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from service.db import tables

target_metadata = tables.MessageRow.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through service.db.migrate, which supplies a connection")

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Several nodes may start at once against one database: one migrates, the others wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
    context.run_migrations()
