"""Fresh PostgreSQL databases for tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("MIGEX_TEST_PG_URL")


@contextmanager
def _database(admin_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    """Create a database named for this use, yield its URL, and drop it afterwards."""
    with _database(admin_url, "migex_test") as url:
        yield url


@contextmanager
def copied_pg_database(admin_url: str, source_url: str) -> Iterator[str]:
    """A copy of the database at `source_url` (which nothing may be connected to), as
    an operator copies a production database to try a migration; dropped afterwards."""
    with _database(admin_url, "migex_copy", make_url(source_url).database) as url:
        yield url
