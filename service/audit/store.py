"""The audit log in the database: appends inside the writer's transaction, reads for proofs.

Every append happens while the caller holds the audit head row lock (see
`service.ledger.committer`), so indices are dense and gapless across processes. Interior
hashes are stored as perfect subtrees (level, k); any root or proof at any size reads
O(log n) of them in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update

from service.audit import merkle
from service.audit.entries import AuditEvent, entry_dict
from service.clock import rfc3339
from service.db.tables import audit_entries, audit_head, audit_nodes
from service.protocol.canonical import canonicalize_fast

HEAD_ID = 1


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    checkpoint_size: int
    checkpoint_at: float
    frontier: list[bytes]
    last_time: float


_h = audit_head.c
# Statements of the writer's every batch, built once (see `read_head` and `Appender`).
_READ_HEAD = select(
    _h.size, _h.root, _h.checkpoint_size, _h.checkpoint_at, _h.frontier, _h.last_time
).where(_h.id == HEAD_ID)
_READ_HEAD_FOR_UPDATE = _READ_HEAD.with_for_update()
_WRITE_HEAD = (
    update(audit_head)
    .where(_h.id == HEAD_ID)
    .values(
        size=bindparam("h_size"),
        root=bindparam("h_root"),
        frontier=bindparam("h_frontier"),
        last_time=bindparam("h_last_time"),
    )
)
_INSERT_ENTRIES = audit_entries.insert()
_INSERT_NODES = audit_nodes.insert()


def read_head(conn: Connection, *, for_update: bool = False) -> TreeHead:
    row = conn.execute(_READ_HEAD_FOR_UPDATE if for_update else _READ_HEAD).one()
    blob = bytes(row.frontier)
    return TreeHead(
        int(row.size),
        bytes(row.root),
        int(row.checkpoint_size),
        float(row.checkpoint_at),
        [blob[i : i + 32] for i in range(0, len(blob), 32)],
        float(row.last_time),
    )


def fetch_nodes(conn: Connection, ids: Iterable[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
    """Read the given stored nodes in one query per 200, grouped by level so that every
    term uses the (level, k) primary key (a row-value IN makes SQLite scan the table)."""
    wanted = sorted(set(ids))
    found: dict[merkle.NodeId, bytes] = {}
    for start in range(0, len(wanted), 200):
        by_level: dict[int, list[int]] = {}
        for level, k in wanted[start : start + 200]:
            by_level.setdefault(level, []).append(k)
        terms = []
        params: dict[str, int] = {}
        for n, (level, ks) in enumerate(by_level.items()):
            names = [f"k{n}_{i}" for i in range(len(ks))]
            terms.append(f"(level = :l{n} AND k IN ({', '.join(':' + m for m in names)}))")
            params[f"l{n}"] = level
            params.update(zip(names, ks, strict=True))
        rows = conn.execute(
            # Only generated placeholder names are interpolated; values are bound.
            text("SELECT level, k, hash FROM audit_nodes WHERE " + " OR ".join(terms)),  # noqa: S608
            params,
        )
        for row in rows:
            found[(int(row.level), int(row.k))] = bytes(row.hash)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise LookupError(f"audit tree nodes missing: {missing[:4]}")
    return found


def root_at(conn: Connection, size: int) -> bytes:
    return merkle.root_from_nodes(size, fetch_nodes(conn, merkle.root_nodes(size)))


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    return merkle.inclusion_proof(
        index, size, fetch_nodes(conn, merkle.inclusion_nodes(index, size))
    )


def consistency_proof(conn: Connection, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, new, fetch_nodes(conn, merkle.consistency_nodes(old, new)))


def leaf_bytes(entry: dict[str, Any]) -> bytes:
    """The entry's RFC 8785 form (its leaf data)."""
    return canonicalize_fast(entry)


@dataclass
class Appender:
    """Assigns indices and builds leaves for one batch; `flush` writes them.

    `mark`/`reset` let the writer undo the entries of one unit whose savepoint rolled
    back, without touching the others in the batch.
    """

    node: str
    start: int
    start_frontier: Sequence[bytes]
    now: float
    _range: merkle.CompactRange = field(init=False)
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _leaves: list[bytes] = field(default_factory=list)
    _nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    _node_marks: list[int] = field(default_factory=list)
    _written: int = field(default=0, init=False)  # entries written by `flush_entries`

    def __post_init__(self) -> None:
        self._range = merkle.CompactRange.from_frontier(self.start, self.start_frontier)
        self._time_for, self._time_text = self.now, rfc3339(self.now)

    @property
    def size(self) -> int:
        return self.start + len(self._entries)

    def append(self, event: AuditEvent) -> int:
        index = self.size
        if self.now != self._time_for:
            self._time_for, self._time_text = self.now, rfc3339(self.now)
        entry = entry_dict(
            event, index=index, time=self.now, node=self.node, time_text=self._time_text
        )
        leaf_data = leaf_bytes(entry)
        leaf = merkle.leaf_hash(leaf_data)
        self._node_marks.append(len(self._nodes))
        self._nodes.extend(self._range.append_collect(leaf))
        self._leaves.append(leaf)
        self._entries.append(
            {
                "idx": index,
                "time": self.now,
                "event": event.event,
                "party": event.party,
                "message_id": event.message_id,
                "type": event.type,
                "outcome": event.outcome,
                "code": event.code,
                "leaf_data": leaf_data,
            }
        )
        return index

    def mark(self) -> int:
        return len(self._entries)

    def committed_entries(self) -> list[dict[str, Any]]:
        """The column values of the entries appended in this batch (for observers)."""
        return list(self._entries)

    def reset(self, mark: int) -> None:
        if mark == len(self._entries):
            return
        self._written = min(self._written, mark)
        del self._nodes[self._node_marks[mark] :]
        del self._node_marks[mark:]
        del self._entries[mark:]
        del self._leaves[mark:]
        self._range = merkle.CompactRange.from_frontier(self.start, self.start_frontier)
        for leaf in self._leaves:
            self._range.append_collect(leaf)

    def root(self) -> bytes:
        return self._range.root()

    def frontier(self) -> list[bytes]:
        return list(self._range.frontier())

    def flush_entries(self, conn: Connection) -> None:
        """Write the entries appended since the last call, and their tree nodes."""
        start = self._written
        if start == len(self._entries):
            return
        conn.execute(_INSERT_ENTRIES, self._entries[start:] if start else self._entries)
        nodes = self._nodes[self._node_marks[start] :]
        if nodes:
            conn.execute(_INSERT_NODES, [{"level": lv, "k": k, "hash": h} for lv, k, h in nodes])
        self._written = len(self._entries)

    def flush(self, conn: Connection) -> None:
        """Write the entries not yet written and the new tree head."""
        if not self._entries:
            return
        self.flush_entries(conn)
        conn.execute(
            _WRITE_HEAD,
            {
                "h_size": self.size,
                "h_root": self.root(),
                "h_frontier": b"".join(self.frontier()),
                "h_last_time": self.now,
            },
        )
