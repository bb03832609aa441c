"""Token buckets kept in the database, updated under the writer's lock.

Every bucket update happens inside a group-commit transaction that holds the audit
head lock, so a partner's limit holds across all processes and hosts sharing the
database.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, insert, select, update

from service.db.tables import rate_buckets


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
            query = select(rate_buckets.c.tokens, rate_buckets.c.updated_at).where(
                rate_buckets.c.party == party
            )
            row = self._conn.execute(query.with_for_update() if self._lock else query).first()
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
                self._conn.execute(
                    update(rate_buckets).where(rate_buckets.c.party == party).values(**values)
                )
            else:
                self._conn.execute(insert(rate_buckets).values(party=party, **values))
