"""Rotating the key-encryption key: `migex privacy rotate-kek` (docs/privacy.md).

Every stored body not under the active KEK is work: a body sealed under an older KEK
has its data key re-wrapped under the active one (the ciphertext is not touched, no
body is decrypted), and a body stored before a KEK was configured is sealed. The work
is done in batches, each a unit of the writer: its rows and one `privacy.kek-rotated`
audit entry (counts and KEK ids) commit together, so a run stopped at any point, even
by SIGKILL, leaves only whole batches done, and the next run finds the rest (rows still
under an old KEK, or in the clear). Attachment files are done after the rows, one by
one, each replaced by one rename, and audited by batches the same way. When none is left, the check values of KEKs no
longer used are forgotten (service/privacy/keks.py), and their files may be removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy import tuple_ as row_value

from service.attachments.store import FileStore
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import messages, node_state, pending_messages, signed_versions
from service.ledger.committer import GroupCommitter, Tx
from service.privacy.atrest import Bodies, message_aad, pending_aad, version_aad
from service.privacy.filerotation import FileCounts, files_left, rotate_files
from service.privacy.keks import retire_check, stored_checks
from service.privacy.sealing import Sealer
from service.protocol.problems import Problem

DEFAULT_BATCH = 500
TABLES = ("messages", "signed_versions", "pending_messages")
BODY_TABLES = (messages, signed_versions, pending_messages)


def _pending(table: Table, active: str) -> ColumnElement[bool]:
    """Rows of `table` whose body is not sealed under the active KEK."""
    c = table.c
    return or_(
        and_(c.kek_id.is_not(None), c.kek_id != active),
        and_(c.kek_id.is_(None), c.jws.is_not(None)),
    )


@dataclass
class Counts:
    rewrapped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    sealed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    old_keks: set[str] = field(default_factory=set)

    def add(self, other: Counts) -> None:
        for name in TABLES:
            self.rewrapped[name] += other.rewrapped[name]
            self.sealed[name] += other.sealed[name]
        self.old_keks |= other.old_keks

    @property
    def total(self) -> int:
        return sum(self.rewrapped.values()) + sum(self.sealed.values())


@dataclass(frozen=True)
class Step:
    """One committed batch: what it did, where the next starts, and whether a table is done."""

    counts: Counts
    table: str
    after: tuple[Any, ...]
    table_done: bool
    audit_index: int | None


@dataclass
class RotateUnit:
    """Re-wrap or seal up to `limit` rows of `table` after the key `after`, in one commit."""

    sealer: Sealer
    table: str
    after: tuple[Any, ...]
    operator: str
    limit: int = DEFAULT_BATCH
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> Step:
        counts = Counts()
        if self.table == "messages":
            after = self._messages(tx.conn, counts)
        elif self.table == "pending_messages":
            after = self._pending_rows(tx.conn, counts)
        else:
            after = self._versions(tx.conn, counts)
        done = after is None
        index = None
        if counts.total:
            index = tx.audit.append(self._event(counts))
        return Step(counts, self.table, after or self.after, done, index)

    def _messages(self, conn: Connection, counts: Counts) -> tuple[int, ...] | None:
        m = messages.c
        rows = conn.execute(
            select(m.pk, m.sender, m.message_id, m.jws, m.kek_id, m.wrapped_key)
            .where(m.pk > (self.after[0] if self.after else -1), _pending(messages, self.active))
            .order_by(m.pk)
            .limit(self.limit)
        ).mappings()
        aad = lambda r: message_aad(r["sender"], r["message_id"])  # noqa: E731
        updates = self._changes(rows, "messages", ("pk",), aad, counts)
        self._apply(conn, messages, (messages.c.pk,), updates)
        return (int(updates[-1]["k_pk"]),) if len(updates) == self.limit else None

    def _versions(self, conn: Connection, counts: Counts) -> tuple[int, ...] | None:
        v, m = signed_versions.c, messages.c
        key = row_value(v.message_pk, v.version)
        start = self.after if self.after else (-1, -1)
        rows = conn.execute(
            select(v.message_pk, v.version, v.jws, v.kek_id, v.wrapped_key, m.message_id)
            .join(messages, m.pk == v.message_pk)
            .where(key > row_value(*start), _pending(signed_versions, self.active))
            .order_by(v.message_pk, v.version)
            .limit(self.limit)
        ).mappings()
        aad = lambda r: version_aad(r["message_id"], int(r["version"]))  # noqa: E731
        updates = self._changes(rows, "signed_versions", ("message_pk", "version"), aad, counts)
        self._apply(conn, signed_versions, (v.message_pk, v.version), updates)
        if len(updates) < self.limit:
            return None
        return (int(updates[-1]["k_message_pk"]), int(updates[-1]["k_version"]))

    def _pending_rows(self, conn: Connection, counts: Counts) -> tuple[Any, ...] | None:
        """Messages awaiting their attachments, in the order of their key."""
        p = pending_messages.c
        key = row_value(p.sender, p.message_id)
        rows = conn.execute(
            select(p.sender, p.message_id, p.jws, p.kek_id, p.wrapped_key)
            .where(
                key > row_value(*(self.after or ("", ""))), _pending(pending_messages, self.active)
            )
            .order_by(p.sender, p.message_id)
            .limit(self.limit)
        ).mappings()
        aad = lambda r: pending_aad(r["sender"], r["message_id"])  # noqa: E731
        keys = ("sender", "message_id")
        updates = self._changes(rows, "pending_messages", keys, aad, counts)
        self._apply(conn, pending_messages, (p.sender, p.message_id), updates)
        if len(updates) < self.limit:
            return None
        return (updates[-1]["k_sender"], updates[-1]["k_message_id"])

    def _changes(
        self,
        rows: Iterable[Any],
        table: str,
        keys: tuple[str, ...],
        aad: Callable[[Any], bytes],
        counts: Counts,
    ) -> list[dict[str, Any]]:
        """Each row's new columns: sealed if it was in the clear, else its key re-wrapped."""
        bodies = Bodies(self.sealer)
        updates = []
        for r in rows:
            if r["kek_id"] is None:
                columns = bodies.columns(bytes(r["jws"]), aad(r))
                counts.sealed[table] += 1
            else:
                columns = self._rewrapped(r, counts, table)
            key = {f"k_{name}": r[name] for name in keys}
            updates.append({**key, "k_kek": r["kek_id"], **_values(columns)})
        return updates

    def _rewrapped(self, row: Any, counts: Counts, table: str) -> dict[str, Any]:
        """The row's data key wrapped under the active KEK; its ciphertext stays."""
        counts.rewrapped[table] += 1
        counts.old_keks.add(row["kek_id"])
        wrapped = self.sealer.rewrap(row["kek_id"], bytes(row["wrapped_key"]))
        return {"kek_id": self.active, "wrapped_key": wrapped}

    @staticmethod
    def _apply(
        conn: Connection, table: Table, keys: tuple[Any, ...], updates: list[dict[str, Any]]
    ) -> None:
        """Write the batch: a re-wrap sets the KEK id and wrapped key only (the ciphertext
        stays as it is); a sealing sets the body too. Each row only if it is still as it
        was read (`k_kek`), so nothing written meanwhile is overwritten."""
        match = [key == bindparam(f"k_{key.name}") for key in keys]
        for sealing in (False, True):
            params = [u for u in updates if (u["k_kek"] is None) == sealing]
            if not params:
                continue
            names = ("jws", "kek_id", "wrapped_key") if sealing else ("kek_id", "wrapped_key")
            same = table.c.kek_id.is_(None) if sealing else table.c.kek_id == bindparam("k_kek")
            statement = (
                table.update()
                .where(*match, same)
                .values({name: bindparam(f"v_{name}") for name in names})
            )
            conn.execute(statement, params)

    @property
    def active(self) -> str:
        return self.sealer.active

    def _event(self, counts: Counts) -> AuditEvent:
        return AuditEvent(
            ev.PRIVACY_KEK_ROTATED,
            "rotated",
            detail={
                "to": self.active,
                "from": sorted(counts.old_keks),
                "rewrapped": counts.rewrapped,
                "sealed": counts.sealed,
                "operator": self.operator,
            },
        )

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing was changed; the operator sees the problem and runs the command again."""


@dataclass
class RetireUnit:
    """Forget the check values of KEKs that no stored body or file is sealed under any
    more; the KEK ids forgotten, and those still in use."""

    active: str
    in_files: frozenset[str] = frozenset()
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> tuple[list[str], list[str]]:
        retired, kept = [], []
        for kek_id in sorted(stored_checks(tx.conn)):
            if kek_id == self.active:
                continue
            if kek_id in self.in_files or any(
                _uses(tx.conn, table, kek_id) for table in BODY_TABLES
            ):
                kept.append(kek_id)
            else:
                retire_check(tx.conn, kek_id)
                retired.append(kek_id)
        return retired, kept

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing was changed."""


def _values(columns: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in columns.items()}


def _uses(conn: Connection, table: Table, kek_id: str) -> bool:
    return bool(conn.execute(select(exists().where(table.c.kek_id == kek_id))).scalar())


def left(conn: Connection, active: str) -> dict[str, int]:
    """How many rows of each table are not yet sealed under `active`: the work left."""
    return {
        table.name: int(
            conn.execute(
                select(func.count()).select_from(table).where(_pending(table, active))
            ).scalar_one()
        )
        for table in BODY_TABLES
    }


def check_serving_with(conn: Connection, active: str) -> None:
    """Refuse (ValueError) to rotate unless the node last started sealing under `active`.

    A process still sealing under the old KEK, or not sealing, would write bodies the
    rotation has already passed (or overwrite sealed ones in the clear). The node
    records its configuration's KEK ids at each start (`config` in `node_state`)."""
    row = conn.execute(select(node_state.c.value).where(node_state.c.key == "config")).first()
    if row is None:
        return  # the node never served from this database
    recorded = json.loads(row.value).get("active_kek", [])
    if recorded != [active]:
        now = recorded[0] if recorded else "none"
        raise ValueError(
            f"the node last started with active KEK {now}, not {active!r}: restart every "
            "process of the node with this configuration first, then rotate"
        )


def rotate(
    committer: GroupCommitter,
    reader: Engine,
    sealer: Sealer,
    *,
    operator: str,
    batch_size: int = DEFAULT_BATCH,
    after_batch: Callable[[int], None] | None = None,
    store: FileStore | None = None,
) -> dict[str, Any]:
    """Run `RotateUnit`s over both tables until no row is left, then bring the files of
    `store` (if any) under the active KEK, then retire unused KEKs.

    `after_batch` is called with the number of batches committed so far."""
    with reader.connect() as conn:
        check_serving_with(conn, sealer.active)
    total = Counts()
    batches = 0
    for table in TABLES:
        after: tuple[Any, ...] = ()
        while True:
            step: Step = committer.run_sync(
                RotateUnit(sealer, table, after, operator, limit=batch_size)
            )
            total.add(step.counts)
            if step.counts.total:
                batches += 1
                if after_batch is not None:
                    after_batch(batches)
            if step.table_done:
                break
            after = step.after
    files = FileCounts()

    def files_done(batch: FileCounts) -> None:
        nonlocal batches
        files.sealed, files.rewrapped = (
            files.sealed + batch.sealed,
            files.rewrapped + batch.rewrapped,
        )
        total.old_keks |= batch.old_keks
        batches += 1
        if after_batch is not None:
            after_batch(batches)

    if store is not None:
        rotate_files(
            committer, store, operator=operator, batch_size=batch_size, after_batch=files_done
        )
    files_remaining, in_files = files_left(store, sealer.active)
    retired, kept = committer.run_sync(RetireUnit(sealer.active, in_files))
    with reader.connect() as conn:
        remaining = left(conn, sealer.active)
    return {
        "active": sealer.active,
        "batches": batches,
        "rewrapped": total.rewrapped,
        "sealed": total.sealed,
        "from": sorted(total.old_keks),
        "left": remaining,
        "retired": retired,
        "still_in_use": kept,
        "files": {"sealed": files.sealed, "rewrapped": files.rewrapped, "left": files_remaining},
    }
