"""Token buckets kept in the database, updated under the writer's lock.

Every bucket update happens inside a group-commit transaction that holds the audit
head lock, so a partner's limit holds across all processes and hosts sharing the
database.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, bindparam, insert, select, update

from service.db.tables import rate_buckets

_b = rate_buckets.c
# Built once: every batch reads and writes its senders' buckets.
_READ = select(_b.tokens, _b.updated_at).where(_b.party == bindparam("party"))
_READ_FOR_UPDATE = _READ.with_for_update()
_UPDATE = (
    update(rate_buckets)
    .where(_b.party == bindparam("b_party"))
    .values(tokens=bindparam("tokens"), updated_at=bindparam("updated_at"))
)
_INSERT = insert(rate_buckets)


class RateBuckets:
    """Token buckets read and written in the caller's transaction.

    Inside a group-commit batch the head lock already serializes updates; a caller
    outside it passes ``lock=True`` so that each bucket row is read with
    ``SELECT ... FOR UPDATE`` (SQLite's writer transactions are exclusive anyway).
    """

    def __init__(self, conn: Connection, now: float, *, lock: bool = False) -> None:
        self._conn = conn
        self._now = now
        self._lock = lock
        self._levels: dict[str, float] = {}
        self._stored: dict[str, bool] = {}
        self._journal: list[tuple[str, float]] = []

    def _level(self, party: str, per_second: float, burst: float) -> float:
        if party not in self._levels:
            query = _READ_FOR_UPDATE if self._lock else _READ
            row = self._conn.execute(query, {"party": party}).first()
            if row is None:
                level = burst
            else:
                elapsed = max(0.0, self._now - float(row.updated_at))
                level = min(burst, float(row.tokens) + elapsed * per_second)
            self._stored[party] = row is not None
            self._levels[party] = level
        return self._levels[party]

    def take(self, party: str, *, per_second: float, burst: int) -> float | None:
        """Take one token: None if allowed, else the seconds until one is available."""
        level = self._level(party, per_second, float(burst))
        if level >= 1.0:
            self._journal.append((party, level))
            self._levels[party] = level - 1.0
            return None
        return math.inf if per_second <= 0 else (1.0 - level) / per_second

    def mark(self) -> int:
        return len(self._journal)

    def reset(self, mark: int) -> None:
        while len(self._journal) > mark:
            party, before = self._journal.pop()
            self._levels[party] = before

    def flush(self) -> None:
        for party in sorted({party for party, _ in self._journal}):
            values = {"tokens": self._levels[party], "updated_at": self._now}
            if self._stored[party]:
                self._conn.execute(_UPDATE, {"b_party": party, **values})
            else:
                self._conn.execute(_INSERT, {"party": party, **values})
