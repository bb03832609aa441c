"""Which key-encryption keys the database holds data under, and the check at start.

For every KEK the node has sealed under, `node_state` keeps a check value
(`kek-check:<id>`): a known value sealed under that KEK. At start the node opens the
check value of every KEK it has; one that does not open means the file holds another
key. A check value whose KEK is not configured means the database holds bodies the node
could not read. Either refuses start, naming the file or the KEK id: the node never
starts on a database it cannot read. A check value is kept until `migex privacy
rotate-kek` has left no body under its KEK (service/privacy/rotation.py).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import IntegrityError

from service.db.tables import node_state
from service.privacy.sealing import Sealer, SealError

CHECK_PREFIX = "kek-check:"


class KekRefused(ValueError):
    """The configured KEKs cannot read this database (or are not the ones it was sealed with)."""


def stored_checks(conn: Connection) -> dict[str, bytes]:
    """The check values kept in the database, by KEK id."""
    rows = conn.execute(
        select(node_state.c.key, node_state.c.value).where(
            node_state.c.key.startswith(CHECK_PREFIX)
        )
    )
    return {r.key[len(CHECK_PREFIX) :]: base64.b64decode(r.value) for r in rows}


def verify_keks(engine: Engine, sealer: Sealer | None, files: Mapping[str, Path]) -> None:
    """Refuse (KekRefused) KEKs that cannot read the database; record new KEKs' check values.

    `files` names each configured KEK's file, for the message."""
    with engine.connect() as conn:
        checks = stored_checks(conn)
    _check_known(checks, sealer, files)
    if sealer is None:
        return
    for kek_id in sorted(set(sealer.ring.keys) - set(checks)):
        value = base64.b64encode(sealer.check_value(kek_id)).decode("ascii")
        try:
            with engine.begin() as conn:
                conn.execute(node_state.insert().values(key=CHECK_PREFIX + kek_id, value=value))
        except IntegrityError:
            # Another process of the node recorded it first: check that one instead.
            with engine.connect() as conn:
                _check_known(stored_checks(conn), sealer, files)


def _check_known(
    checks: Mapping[str, bytes], sealer: Sealer | None, files: Mapping[str, Path]
) -> None:
    for kek_id, value in sorted(checks.items()):
        if sealer is None or kek_id not in sealer.ring.keys:
            raise KekRefused(
                f"the database holds bodies sealed under key-encryption key {kek_id!r}, which "
                "is not configured (privacy.kek_files); add its file to read them. The node "
                "does not start on a database it cannot read"
            )
        try:
            sealer.verify_check(kek_id, value)
        except SealError:
            raise KekRefused(
                f"KEK file {files.get(kek_id, '?')} (id {kek_id!r}) is not the key this "
                "database's bodies were sealed under: its check value does not open. Restore "
                "the right file; the node does not start on a database it cannot read"
            ) from None


def retire_check(conn: Connection, kek_id: str) -> None:
    """Forget a KEK that no stored body is sealed under any more."""
    conn.execute(delete(node_state).where(node_state.c.key == CHECK_PREFIX + kek_id))
