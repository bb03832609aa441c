"""The Alembic migrations create exactly the schema the table declarations describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from service.db import migrate
from service.db.engine import create_engines
from service.db.tables import MessageRow, audit_head, pending_messages


def test_migrations_match_the_table_declarations(database_url: str) -> None:
    engines = create_engines(database_url)
    try:
        migrate.upgrade(engines.writer)
        with engines.writer.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), MessageRow.metadata)
        assert diff == []
    finally:
        engines.dispose()


def test_upgrade_is_idempotent_and_leaves_an_empty_tree(database_url: str) -> None:
    engines = create_engines(database_url)
    try:
        migrate.upgrade(engines.writer)
        migrate.upgrade(engines.writer)
        assert migrate.is_current(engines.reader)
        with engines.reader.connect() as conn:
            size, root = conn.execute(select(audit_head.c.size, audit_head.c.root)).one()
        assert size == 0
        assert root.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    finally:
        engines.dispose()


def test_a_fresh_database_is_not_current_until_upgraded(sqlite_url: str) -> None:
    engines = create_engines(sqlite_url)
    try:
        assert not migrate.is_current(engines.reader)
    finally:
        engines.dispose()


def test_0012_drops_the_bodies_of_expired_pending_messages_only(database_url: str) -> None:
    engines = create_engines(database_url)
    row = {
        "digest": "d" * 64,
        "jws": b"eyJ.body.sig",
        "kek_id": None,
        "wrapped_key": None,
        "upload_token": "t",
        "attachments": '[{"name": "passport.pdf"}]',
        "warnings": "[]",
        "created_at": 1.0,
        "expires_at": 2.0,
    }
    try:
        migrate.upgrade(engines.writer, "0011")
        with engines.writer.begin() as conn:
            conn.execute(
                pending_messages.insert(),
                [
                    {**row, "sender": "UZ:MIA", "message_id": "expired", "expired_at": 3.0},
                    {**row, "sender": "UZ:MIA", "message_id": "waiting", "expired_at": None},
                ],
            )
        migrate.upgrade(engines.writer)
        with engines.reader.connect() as conn:
            kept = {
                r.message_id: (r.jws, r.attachments, r.warnings, r.digest, r.expired_at)
                for r in conn.execute(select(pending_messages))
            }
        assert kept == {
            "expired": (None, "[]", None, "d" * 64, 3.0),
            "waiting": (b"eyJ.body.sig", '[{"name": "passport.pdf"}]', "[]", "d" * 64, None),
        }
    finally:
        engines.dispose()
