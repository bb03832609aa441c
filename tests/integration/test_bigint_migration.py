"""Revision 0002 makes every key 64-bit, on a copy of a database that was in use.

A node fills a database at revision 0001; the database is copied, the copy upgraded,
and every row of every table compared with the original. Then the upgraded node is
taken past 2**31 audit entries, where a 32-bit key could no longer be stored, and
keeps accepting messages, which the inbox cursor reads back.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, update

from service.audit import store
from service.clock import FixedClock
from service.config import load_config
from service.db import migrate
from service.db.engine import create_engines
from service.db.tables import MessageRow, audit_head
from service.main import create_app
from tests.support.databases import PG_URL, copied_pg_database
from tests.support.nodes import (
    CLIENT_TOKEN,
    Federation,
    envelope_for,
    example_body,
    outbox_statistics,
)

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
# Columns that hold a key, refer to one, or count Unix seconds.
WIDENED = {
    "messages": ("pk", "iat"),
    "outbox": ("message_pk",),
    "signed_versions": ("message_pk", "iat"),
    "delivery_attempts": ("pk", "message_pk"),
    "checkpoints": ("pk",),
    "audit_entries": ("idx",),
}


@contextmanager
def running(
    federation: Federation, url: str, clock: FixedClock, **options: Any
) -> Iterator[TestClient]:
    federation.overrides["database_url"] = url
    app = create_app(
        load_config(federation.write_config()), clock=clock, run_delivery=False, **options
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@contextmanager
def copy_of(url: str, tmp: Path) -> Iterator[str]:
    if url.startswith("sqlite"):
        copy = tmp / "copy.db"
        shutil.copy(url.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
        return
    assert PG_URL is not None
    with copied_pg_database(PG_URL, url) as copied:
        yield copied


def contents(url: str, columns_of: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the database has, in key order, bytes as bytes: the
    columns the database at `columns_of` (default: `url`) has, so that an upgraded copy
    is compared with its original on the original's columns."""
    engines = create_engines(url)
    shape = create_engines(columns_of) if columns_of else engines
    try:
        reflected = inspect(shape.reader)
        present = {
            name: {c["name"] for c in reflected.get_columns(name)}
            for name in reflected.get_table_names()
        }
        with engines.reader.connect() as conn:
            return {
                table.name: [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.execute(
                        select(
                            *(c for c in table.columns if c.name in present[table.name])
                        ).order_by(*table.primary_key.columns)
                    )
                ]
                for table in MessageRow.metadata.sorted_tables
                if table.name in present
            }
    finally:
        engines.dispose()
        if shape is not engines:
            shape.dispose()


def receive(client: TestClient, federation: Federation) -> str:
    # Without a case reference: this node links a message to its case in a table of a
    # later revision than 0001.
    body = {
        k: v
        for k, v in example_body("citizenship.verification-request").items()
        if k != "case_reference"
    }
    env = envelope_for(federation.uz, body=body)
    resp = client.post("/v1/messages", content=federation.uz.sign(env), headers=JOSE)
    assert resp.status_code == 201, resp.text
    return env.id


def test_an_upgraded_copy_keeps_every_row_and_takes_keys_past_32_bits(
    federation: Federation, database_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    engines = create_engines(database_url)
    migrate.upgrade(engines.writer, "0001")
    engines.dispose()
    with running(federation, database_url, clock, migrate_on_start=False) as client:
        received = [receive(client, federation) for _ in range(3)]
        assert client.post(f"/v1/inbox/UZ:MIA/{received[0]}/ack", headers=CLIENT).status_code == 200
        for _ in range(2):
            assert (
                client.post("/v1/outbox", headers=CLIENT, json=outbox_statistics()).status_code
                == 202
            )
    before = contents(database_url)
    assert len(before["messages"]) == 5

    with copy_of(database_url, tmp_path) as copy:
        engines = create_engines(copy)
        try:
            migrate.upgrade(engines.writer)
            assert migrate.is_current(engines.reader)
            columns = inspect(engines.reader)
            for table, names in WIDENED.items():
                types = {c["name"]: c["type"] for c in columns.get_columns(table)}
                for name in names:
                    # BIGINT; on SQLite, INTEGER (64-bit, and the rowid for a key).
                    assert types[name].python_type is int
                    assert str(types[name]) in ("BIGINT", "INTEGER"), (table, name)
                    if engines.is_sqlite:
                        continue
                    assert str(types[name]) == "BIGINT", (table, name)
            after = contents(copy)
            # Tables of later revisions are new and empty; every other one is unchanged
            # (on its columns: later revisions add some, null in every upgraded row).
            assert contents(copy, columns_of=database_url) == before
            assert all(not after[name] for name in set(after) - set(before))
            # As if 2**31 entries had been appended: the next keys pass 32 bits.
            with engines.writer.begin() as conn:
                conn.execute(
                    update(audit_head).values(
                        size=2**31, checkpoint_size=2**31, frontier=b"\x01" * 32
                    )
                )
        finally:
            engines.dispose()

        with running(federation, copy, clock) as client:
            last = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
            assert [m["id"] for m in last] == received
            late = [receive(client, federation) for _ in range(2)]
            queued = client.post("/v1/outbox", headers=CLIENT, json=outbox_statistics())
            assert queued.status_code == 202, queued.text
            assert queued.json()["audit_index"] > 2**31
            first = client.get("/v1/inbox", params={"limit": 3}, headers=CLIENT).json()
            assert [m["id"] for m in first["messages"]] == received
            cursor = first["next_cursor"]
            rest = client.get("/v1/inbox", params={"cursor": cursor}, headers=CLIENT).json()
            assert [m["id"] for m in rest["messages"]] == late
            assert all(m["audit_index"] > 2**31 for m in rest["messages"])
            after = client.get("/v1/inbox", params={"cursor": 2**31}, headers=CLIENT).json()
            assert [m["id"] for m in after["messages"]] == late
            status = client.get(f"/v1/outbox/{queued.json()['id']}", headers=CLIENT)
            assert status.status_code == 200
            with client.app.state.node.engines.reader.connect() as conn:  # type: ignore[attr-defined]
                assert store.read_head(conn).size > 2**31
