"""The witness tables: queries only, in the caller's transaction.

`witness_logs` holds, per log this node witnesses, the latest checkpoint it
cosigned; `witness_peers` what this node knows of each of its own witnesses
(shared by all processes: the size each last cosigned, its lease and backoff);
`witness_cosignatures` the verified cosignatures of this node's checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, or_, select, update

from service.audit.checkpoint import Checkpoint
from service.db.tables import checkpoints, witness_cosignatures, witness_logs, witness_peers
from service.witness.checks import Latest

# --- as a witness ------------------------------------------------------------------


def read_latest(conn: Connection, origin: str, *, lock: bool = False) -> Latest | None:
    """The latest cosigned checkpoint of ``origin``, its row locked when ``lock``."""
    c = witness_logs.c
    query = select(c.size, c.root, c.note).where(c.origin == origin)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else Latest(int(row.size), bytes(row.root), str(row.note))


def save_latest(
    conn: Connection, origin: str, cp: Checkpoint, note: str, now: float, *, exists: bool
) -> None:
    values = {"size": cp.size, "root": cp.root, "note": note, "updated_at": now}
    if exists:
        conn.execute(update(witness_logs).where(witness_logs.c.origin == origin).values(**values))
    else:
        conn.execute(insert(witness_logs).values(origin=origin, inconsistent=0, **values))


def count_inconsistent(conn: Connection, origin: str, now: float) -> None:
    """Count a validly signed, inconsistent submission against the log (an alert metric)."""
    c = witness_logs.c
    conn.execute(
        update(witness_logs)
        .where(c.origin == origin)
        .values(inconsistent=c.inconsistent + 1, inconsistent_at=now)
    )


@dataclass(frozen=True)
class LogState:
    origin: str
    size: int
    updated_at: float
    inconsistent: int


def log_states(conn: Connection) -> list[LogState]:
    c = witness_logs.c
    rows = conn.execute(
        select(c.origin, c.size, c.updated_at, c.inconsistent).order_by(c.origin)
    ).all()
    return [LogState(r.origin, int(r.size), float(r.updated_at), int(r.inconsistent)) for r in rows]


# --- as a witnessed log ------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """This node's knowledge of one of its witnesses."""

    witness: str
    size: int
    cosigned_pk: int | None
    failures: int
    next_attempt_at: float
    last_success_at: float | None
    last_error_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class StoredCheckpoint:
    pk: int
    size: int
    issued_at: float
    note: str


def ensure_peers(conn: Connection, witnesses: Iterable[str]) -> None:
    """Add a row for each witness that has none (size 0: learned through the first 409)."""
    known = set(conn.execute(select(witness_peers.c.witness)).scalars())
    for witness in witnesses:
        if witness not in known:
            conn.execute(insert(witness_peers).values(witness=witness, size=0))


def read_peers(conn: Connection) -> dict[str, Peer]:
    c = witness_peers.c
    rows = conn.execute(
        select(
            c.witness,
            c.size,
            c.cosigned_pk,
            c.failures,
            c.next_attempt_at,
            c.last_success_at,
            c.last_error_at,
            c.last_error,
        )
    ).all()
    return {r.witness: Peer(*r) for r in rows}


def claim(conn: Connection, witness: str, owner: str, now: float, until: float) -> Peer | None:
    """Take the lease of ``witness`` if it is free (or ours) and due; None if not."""
    c = witness_peers.c
    taken = conn.execute(
        update(witness_peers)
        .where(
            c.witness == witness,
            c.next_attempt_at <= now,
            or_(c.lease_until.is_(None), c.lease_until < now, c.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=until)
    ).rowcount
    if taken != 1:
        return None
    return read_peers_one(conn, witness)


def read_peers_one(conn: Connection, witness: str) -> Peer | None:
    return read_peers(conn).get(witness)


def record_success(
    conn: Connection,
    witness: str,
    owner: str,
    *,
    checkpoint_pk: int,
    size: int,
    line: str,
    timestamp: int,
    now: float,
    keep_until: float,
) -> bool:
    """Store a verified cosignature and keep the lease until ``keep_until``.

    False if the lease was no longer ours (it ran out and another process took it):
    the cosignature is stored all the same, the witness's row is left to its holder.
    """
    exists = conn.execute(
        select(func.count())
        .select_from(witness_cosignatures)
        .where(
            witness_cosignatures.c.checkpoint_pk == checkpoint_pk,
            witness_cosignatures.c.witness == witness,
        )
    ).scalar_one()
    if not exists:
        conn.execute(
            insert(witness_cosignatures).values(
                checkpoint_pk=checkpoint_pk,
                witness=witness,
                line=line,
                timestamp=timestamp,
                received_at=now,
            )
        )
    c = witness_peers.c
    updated = conn.execute(
        update(witness_peers)
        .where(c.witness == witness, c.lease_owner == owner)
        .values(
            size=size,
            cosigned_pk=checkpoint_pk,
            failures=0,
            next_attempt_at=now,
            last_success_at=now,
            lease_until=keep_until,
        )
    ).rowcount
    return bool(updated == 1)


def record_size(conn: Connection, witness: str, owner: str, size: int) -> None:
    """Learned from a 409: the size the witness last cosigned. The lease is kept."""
    conn.execute(
        update(witness_peers)
        .where(witness_peers.c.witness == witness, witness_peers.c.lease_owner == owner)
        .values(size=size)
    )


def record_failure(
    conn: Connection, witness: str, owner: str, *, error: str, now: float, retry_at: float
) -> None:
    c = witness_peers.c
    conn.execute(
        update(witness_peers)
        .where(c.witness == witness, c.lease_owner == owner)
        .values(
            failures=c.failures + 1,
            next_attempt_at=retry_at,
            last_error=error[:1000],
            last_error_at=now,
            lease_owner=None,
            lease_until=None,
        )
    )


def release(conn: Connection, witness: str, owner: str) -> None:
    c = witness_peers.c
    conn.execute(
        update(witness_peers)
        .where(c.witness == witness, c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    c = checkpoints.c
    row = conn.execute(
        select(c.pk, c.size, c.issued_at, c.note).order_by(c.size.desc(), c.pk.desc()).limit(1)
    ).first()
    return None if row is None else StoredCheckpoint(*row)


def checkpoint_by_pk(conn: Connection, pk: int) -> StoredCheckpoint | None:
    c = checkpoints.c
    row = conn.execute(select(c.pk, c.size, c.issued_at, c.note).where(c.pk == pk)).first()
    return None if row is None else StoredCheckpoint(*row)


def checkpoint_by_size(conn: Connection, size: int) -> StoredCheckpoint | None:
    c = checkpoints.c
    row = conn.execute(
        select(c.pk, c.size, c.issued_at, c.note)
        .where(c.size == size)
        .order_by(c.pk.desc())
        .limit(1)
    ).first()
    return None if row is None else StoredCheckpoint(*row)


def recent_checkpoints(conn: Connection, limit: int) -> list[StoredCheckpoint]:
    c = checkpoints.c
    rows = conn.execute(
        select(c.pk, c.size, c.issued_at, c.note).order_by(c.pk.desc()).limit(limit)
    ).all()
    return [StoredCheckpoint(*r) for r in rows]


def cosignatures(conn: Connection, pks: Iterable[int]) -> dict[int, dict[str, str]]:
    """The stored cosignature lines of the checkpoints ``pks``: pk -> witness -> line."""
    wanted = list(pks)
    if not wanted:
        return {}
    c = witness_cosignatures.c
    rows = conn.execute(
        select(c.checkpoint_pk, c.witness, c.line).where(c.checkpoint_pk.in_(wanted))
    ).all()
    found: dict[int, dict[str, str]] = {}
    for pk, witness, line in rows:
        found.setdefault(int(pk), {})[str(witness)] = str(line)
    return found
