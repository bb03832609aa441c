"""Reading a node's database from outside: the audit log, its checkpoints, stored messages."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select

from service.audit import queries, store
from service.audit.offline import VerifyReport, verify_export
from service.db.tables import audit_entries, checkpoints, messages


def tree_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return store.read_head(conn).size


def entries(engine: Engine) -> list[dict[str, Any]]:
    """Every audit entry, decoded, in index order."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx)
        ).scalars()
        return [json.loads(bytes(leaf)) for leaf in rows]


def indices(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            int(i)
            for i in conn.execute(select(audit_entries.c.idx).order_by(audit_entries.c.idx))
            .scalars()
            .all()
        ]


def latest_checkpoint(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(checkpoints.c.note).order_by(checkpoints.c.pk.desc()).limit(1)
            ).scalar_one()
        )


def verify_log(engine: Engine, vkey: str) -> VerifyReport:
    """Export the whole log and check it against the latest signed checkpoint."""
    lines = list(queries.export_lines(engine, 0, tree_size(engine)))
    return verify_export(lines, latest_checkpoint(engine), vkey, workers=1)


def stored_rows(engine: Engine, direction: str = "in") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(messages).where(messages.c.direction == direction).order_by(messages.c.pk)
            ).mappings()
        ]


def copies_per_message(engine: Engine) -> dict[tuple[str, str], int]:
    """How many rows each (sender, message id) has."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.sender, messages.c.message_id, func.count()).group_by(
                messages.c.sender, messages.c.message_id
            )
        ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}
