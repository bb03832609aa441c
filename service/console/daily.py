"""Counts by day, kept once a day is over: the overview's messages and delivery latency,
and the partners page's last delivered and last failed attempt per partner.

Counting fourteen days of messages on every view reads every message row of those days,
which grows with the traffic. A day's counts never change once it is over (messages and
delivery attempts are never deleted; purging erases bytes, not rows), so the first view
after a day ended counts it once (one day of rows, through an index range) and keeps the
counts in `console_daily`; later views read them back. Only the days still open (today,
and yesterday for `GRACE` seconds after midnight, for a late commit on another process)
are counted on each view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Connection, func, insert, select

from service.audit import entries as ev
from service.console.queries import first_index_since
from service.db.tables import audit_entries, console_daily, delivery_attempts, messages
from service.ledger.committer import Tx, row_key
from service.protocol.problems import Problem

DAY = 86400
GRACE = 3600
LATENCY_BOUNDS = ((1.0, "< 1 s"), (10.0, "1-10 s"), (60.0, "10-60 s"), (600.0, "1-10 min"))
LATENCY_LABELS = (*(label for _, label in LATENCY_BOUNDS), "≥ 10 min")
_MESSAGES, _LATENCY, _DONE = "messages", "latency", "done"
_LAST_OK, _LAST_FAILED = "last-ok", "last-failed"  # per partner, in milliseconds
_REFUSALS = "refusals"  # per problem code


@dataclass
class DayCounts:
    # (direction, partner, type) -> messages created that day
    messages: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # per latency bucket: deliveries that succeeded that day
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_LABELS))
    # per partner: the time of the day's last delivered and last failed attempt
    last_ok: dict[str, float] = field(default_factory=dict)
    last_failed: dict[str, float] = field(default_factory=dict)
    # per problem code: messages refused that day
    refusals: dict[str, int] = field(default_factory=dict)


def is_over(day: int, now: float) -> bool:
    """Whether the counts of `day` can no longer change (kept from then on)."""
    return (day + 1) * DAY + GRACE <= now


def _bucket(latency: float) -> int:
    latency = max(0.0, latency)
    return next((i for i, (b, _) in enumerate(LATENCY_BOUNDS) if latency < b), len(LATENCY_BOUNDS))


def count_day(conn: Connection, day: int) -> DayCounts:
    """A day's counts from the messages, delivery attempts and log entries of that day."""
    counts = DayCounts()
    m = messages.c
    rows = conn.execute(
        select(m.direction, m.sender, m.recipient, m.type, func.count().label("n"))
        .where(m.created_at >= day * DAY, m.created_at < (day + 1) * DAY)
        .group_by(m.direction, m.sender, m.recipient, m.type)
    )
    for r in rows:
        partner = r.sender if r.direction == "in" else r.recipient
        key = (str(r.direction), str(partner), str(r.type))
        counts.messages[key] = counts.messages.get(key, 0) + int(r.n)
    first = first_index_since(conn, day * DAY)
    if first is not None:  # the day's entries are the index range [first, end)
        end = first_index_since(conn, (day + 1) * DAY)
        _count_attempts(conn, first, end, counts)
        _count_refusals(conn, first, end, counts)
    return counts


def _count_attempts(conn: Connection, first: int, end: int | None, counts: DayCounts) -> None:
    """Latencies and last attempts; an attempt's row key follows its audit entry's index
    (ledger.committer.row_key), and an outbound message's row is created when queued."""
    a, m = delivery_attempts.c, messages.c
    query = (
        select(m.recipient, a.outcome, a.at, (a.at - m.created_at).label("latency"))
        .join(messages, m.pk == a.message_pk)
        .where(a.pk >= row_key(first))
    )
    if end is not None:
        query = query.where(a.pk < row_key(end))
    for r in conn.execute(query):
        partner, at = str(r.recipient), float(r.at)
        if r.outcome == "delivered":
            counts.latency[_bucket(float(r.latency))] += 1
            counts.last_ok[partner] = max(at, counts.last_ok.get(partner, at))
        else:
            counts.last_failed[partner] = max(at, counts.last_failed.get(partner, at))


def _count_refusals(conn: Connection, first: int, end: int | None, counts: DayCounts) -> None:
    """Refused inbound and outbound messages by problem code (rate limits included), an
    index range of `ix_audit_event`."""
    t = audit_entries.c
    query = (
        select(t.code, func.count().label("n"))
        .where(t.event.in_((ev.MESSAGE_REFUSED, ev.SEND_REFUSED)), t.idx >= first)
        .group_by(t.code)
    )
    if end is not None:
        query = query.where(t.idx < end)
    for r in conn.execute(query):
        code = str(r.code or "-")
        counts.refusals[code] = counts.refusals.get(code, 0) + int(r.n)


def kept_days(conn: Connection, days: Iterable[int]) -> dict[int, DayCounts]:
    """The counts kept for those of `days` that were counted after they were over."""
    wanted = list(days)
    if not wanted:
        return {}
    d = console_daily.c
    rows = conn.execute(
        select(d.day, d.metric, d.key, d.n).where(d.day >= min(wanted), d.day <= max(wanted))
    )
    found: dict[int, DayCounts] = {}
    for r in rows:
        counts = found.setdefault(int(r.day), DayCounts())
        if r.metric == _MESSAGES:
            direction, partner, msg_type = str(r.key).split("|", 2)
            counts.messages[(direction, partner, msg_type)] = int(r.n)
        elif r.metric == _LATENCY:
            counts.latency[int(r.key)] = int(r.n)
        elif r.metric == _REFUSALS:
            counts.refusals[str(r.key)] = int(r.n)
        elif r.metric == _LAST_OK:
            counts.last_ok[str(r.key)] = int(r.n) / 1000
        elif r.metric == _LAST_FAILED:
            counts.last_failed[str(r.key)] = int(r.n) / 1000
    done = {int(r.day) for r in rows_done(conn, min(wanted), max(wanted))}
    return {day: counts for day, counts in found.items() if day in done and day in wanted}


def rows_done(conn: Connection, first: int, last: int) -> list[Any]:
    d = console_daily.c
    return list(conn.execute(select(d.day).where(d.metric == _DONE, d.day >= first, d.day <= last)))


@dataclass
class KeepDays:
    """Store the counts of days that are over, unless another process stored them first."""

    days: Mapping[int, DayCounts]
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> None:
        done = {int(r.day) for r in rows_done(tx.conn, min(self.days), max(self.days))}
        rows: list[dict[str, Any]] = []
        for day, counts in self.days.items():
            if day in done:
                continue
            rows.append({"day": day, "metric": _DONE, "key": "", "n": 0})
            rows.extend(
                {"day": day, "metric": _MESSAGES, "key": "|".join(key), "n": n}
                for key, n in counts.messages.items()
            )
            rows.extend(
                {"day": day, "metric": _LATENCY, "key": str(i), "n": n}
                for i, n in enumerate(counts.latency)
                if n
            )
            rows.extend(
                {"day": day, "metric": _REFUSALS, "key": code, "n": n}
                for code, n in counts.refusals.items()
            )
            for metric, times in ((_LAST_OK, counts.last_ok), (_LAST_FAILED, counts.last_failed)):
                rows.extend(
                    {"day": day, "metric": metric, "key": partner, "n": round(at * 1000)}
                    for partner, at in times.items()
                )
        if rows:
            tx.conn.execute(insert(console_daily), rows)

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        raise problem


def gather(
    conn: Connection, days: list[int], now: float
) -> tuple[dict[int, DayCounts], dict[int, DayCounts]]:
    """The counts of each of `days`, and those newly counted that are over (to keep)."""
    found = kept_days(conn, [d for d in days if is_over(d, now)])
    fresh = {d: count_day(conn, d) for d in days if d not in found}
    return {**found, **fresh}, {d: c for d, c in fresh.items() if is_over(d, now)}


@dataclass(frozen=True)
class Summary:
    per_day: list[dict[str, Any]]  # day, direction, partner, count
    by_type: list[tuple[str, int]]  # most first
    latency: list[tuple[str, int]]  # per bucket label
    refusals: list[tuple[str, int]]  # per problem code, most first
    # per partner: last_success and last_failure (Unix seconds or None)
    health: dict[str, dict[str, float | None]]


def summarise(days: Mapping[int, DayCounts]) -> Summary:
    per_day: dict[tuple[int, str, str], int] = {}
    by_type: dict[str, int] = {}
    latency = [0] * len(LATENCY_LABELS)
    health: dict[str, dict[str, float | None]] = {}
    refusals: dict[str, int] = {}
    for day, counts in sorted(days.items()):
        for code, n in counts.refusals.items():
            refusals[code] = refusals.get(code, 0) + n
        for name, times in (("last_success", counts.last_ok), ("last_failure", counts.last_failed)):
            for partner, at in times.items():
                seen = health.setdefault(partner, {"last_success": None, "last_failure": None})
                seen[name] = max(at, seen[name] or at)
        for (direction, partner, msg_type), n in counts.messages.items():
            key = (day, direction, partner)
            per_day[key] = per_day.get(key, 0) + n
            by_type[msg_type] = by_type.get(msg_type, 0) + n
        latency = [x + y for x, y in zip(latency, counts.latency, strict=True)]
    return Summary(
        [
            {"day": k[0], "direction": k[1], "partner": k[2], "count": n}
            for k, n in sorted(per_day.items())
        ],
        sorted(by_type.items(), key=lambda item: (-item[1], item[0])),
        list(zip(LATENCY_LABELS, latency, strict=True)),
        sorted(refusals.items(), key=lambda item: (-item[1], item[0])),
        health,
    )
