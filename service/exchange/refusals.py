"""Refusals of unproven senders: a logging rate per source, then counted aggregates.

A message refused before its signature verified could come from anyone, and each
refusal is a permanent entry in the log. So each source address has a token bucket
(kept in `rate_buckets` under the writer's lock, as a partner's is, so it is shared by
all processes): while it has tokens, each refusal gets its own `message.refused`
entry; past it, the refusal is only counted, per source and interval, in
`node_state`, and one `message.refused-aggregate` entry records the count when the
interval is over (docs/protocol.md, clarification 3). The request itself is answered
as before, whatever the bucket holds: the limit is on what the log records, not on
the service (a partner behind the same address still has its messages checked).

A tally is written to the log at the first refusal from its source after its
interval, by `flush_due` (run every second by the node, which catches a flood that
stopped), and by a final flush when the node stops. Every change happens in the
writer's transaction, so no count is lost or counted twice across processes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from sqlalchemy import Connection, Engine, delete, select

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.clock import rfc3339
from service.db.tables import node_state, rate_buckets
from service.exchange.inbound import Facts
from service.ledger.committer import AuditOnly, GroupCommitter, Tx
from service.protocol.problems import Problem
from service.protocol.receipts import message_digest

log = logging.getLogger("migex.refusals")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Keys of the source's tally in `node_state` and of its bucket in `rate_buckets`
# (whose keys are at most 40 characters; a party id never starts in lowercase).
TALLY_PREFIX = "refusals:"
BUCKET_PREFIX = "src:"
_BUCKET_DIGEST_CHARS = 32
# The peer address when the server gives none that parses.
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class RefusalLimits:
    """How many refusals of one source get entries of their own, and the interval
    over which the rest are counted into one entry."""

    per_second: float
    burst: int
    interval: float


@dataclass(frozen=True)
class SourceRule:
    """How the source of a request is named: the peer address, or the address a
    trusted proxy says it forwarded for; IPv6 addresses by their network."""

    trusted_proxies: tuple[IPNetwork, ...] = ()
    ipv6_prefix: int = 64

    def source(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The source's address (text), from the peer and any `X-Forwarded-For` values.

        The header is read only when the peer is a trusted proxy, from its right end:
        each hop that is itself a trusted proxy passes to the one before it; the first
        hop that is not (or the last that parses) is the source.
        """
        address = _parse(peer)
        if address is None:
            return UNKNOWN_SOURCE
        if self._trusted(address) and forwarded_for:
            hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
            for hop in reversed(hops):
                parsed = _parse(hop)
                if parsed is None:
                    break
                address = parsed
                if not self._trusted(address):
                    break
        if isinstance(address, ipaddress.IPv6Address):
            network = ipaddress.IPv6Network((address, self.ipv6_prefix), strict=False)
            return str(network)
        return str(address)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted_proxies)


def _parse(text: str | None) -> IPAddress | None:
    if text is None or len(text) > 64:
        return None
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def source_digest(source: str) -> str:
    """How an entry names a source: `sha-256:` and the base64url SHA-256 of its text."""
    return message_digest(source.encode("ascii"))


@dataclass
class Tally:
    """The refusals of one source counted since `since`, by problem code."""

    since: float
    count: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, code: str) -> None:
        self.count += 1
        self.codes[code] = self.codes.get(code, 0) + 1

    def due(self, now: float, interval: float) -> bool:
        return now >= self.since + interval

    def dumps(self) -> str:
        return json.dumps(
            {"since": self.since, "count": self.count, "codes": self.codes}, sort_keys=True
        )

    @classmethod
    def loads(cls, text: str) -> Tally | None:
        """The tally stored as `text`; None for a closed one (empty text)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            codes = {str(k): int(v) for k, v in data["codes"].items()}
            return cls(float(data["since"]), int(data["count"]), codes)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("a stored refusal tally is unreadable; counting starts again")
            return None

    def event(self, digest: str, now: float, interval: float) -> AuditEvent:
        return AuditEvent(
            ev.MESSAGE_REFUSED_AGGREGATE,
            "refused",
            detail={
                "source": digest,
                "count": self.count,
                "codes": dict(sorted(self.codes.items())),
                "since": rfc3339(self.since),
                "until": rfc3339(min(now, self.since + interval)),
            },
        )


@dataclass
class _Slot:
    stored: bool
    tally: Tally | None


class TallyBook:
    """The tallies one batch has read or changed, by source digest.

    Each is read from `node_state` once per batch; changes are written through the
    batch's deferred inserts and updates (one statement per row at the end). A tally
    whose entry was written is left as an empty value, removed by a later flush.
    """

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    @staticmethod
    def of(tx: Tx) -> TallyBook:
        return tx.cache.attached(TallyBook)

    def touched(self, digest: str) -> bool:
        return digest in self._slots

    def get(self, tx: Tx, digest: str) -> Tally | None:
        slot = self._slots.get(digest)
        if slot is None:
            text = tx.conn.execute(
                select(node_state.c.value).where(node_state.c.key == TALLY_PREFIX + digest)
            ).scalar()
            slot = _Slot(text is not None, None if text is None else Tally.loads(str(text)))
            self._slots[digest] = slot
        return slot.tally

    def known(self, digest: str, text: str | None) -> None:
        """Record a row read outside `get` (None: absent, e.g. just deleted)."""
        self._slots[digest] = _Slot(text is not None, None if text is None else Tally.loads(text))

    def put(self, tx: Tx, digest: str, tally: Tally | None) -> None:
        slot = self._slots[digest]
        value = "" if tally is None else tally.dumps()
        if slot.stored:
            tx.defer_update(node_state, "key", TALLY_PREFIX + digest, {"value": value})
        else:
            tx.defer(node_state, {"key": TALLY_PREFIX + digest, "value": value})
            slot.stored = True
        slot.tally = tally


@dataclass
class RefusalUnit:
    """Record one refusal of an unproven sender: its own entry while the source has
    tokens, else a count in the source's tally. Returns the entry's index, or None."""

    event: AuditEvent
    digest: str
    limits: RefusalLimits
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> int | None:
        limits = self.limits
        bucket = BUCKET_PREFIX + self.digest.removeprefix("sha-256:")[:_BUCKET_DIGEST_CHARS]
        if tx.rates.take(bucket, per_second=limits.per_second, burst=limits.burst) is None:
            return tx.audit.append(self.event)
        book = TallyBook.of(tx)
        tally = book.get(tx, self.digest)
        if tally is not None and tally.due(tx.now, limits.interval):
            tx.audit.append(tally.event(self.digest, tx.now, limits.interval))
            tally = None
        if tally is None:
            tally = Tally(since=tx.now)
        tally.add(self.event.code or "unknown")
        book.put(tx, self.digest, tally)
        return None

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - run never refuses
        raise problem


def refusal_unit(
    facts: Facts, problem: Problem, source: str, limits: RefusalLimits
) -> RefusalUnit | AuditOnly:
    """The writer's unit that records a refusal of a request from `source` (an address,
    see `SourceRule`). Before the signature verified, the sender is unproven and the
    source's rate decides between an entry of its own and a count; after, the refusal
    always gets its entry. The unit returns the entry's index, or None if counted."""
    if not facts.unsigned:
        return AuditOnly([facts.refusal(problem)])
    digest = source_digest(source)
    return RefusalUnit(facts.refusal(problem, source=digest), digest, limits)


@dataclass
class FlushTallies:
    """Write the tallies whose interval is over (all of them when `final`) as
    aggregate entries, and remove closed tallies and long-idle source buckets."""

    limits: RefusalLimits
    final: bool = False
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> int:
        book = TallyBook.of(tx)
        written = 0
        rows = tx.conn.execute(
            select(node_state.c.key, node_state.c.value).where(
                node_state.c.key.startswith(TALLY_PREFIX, autoescape=True)
            )
        ).all()
        for row in rows:
            digest = str(row.key).removeprefix(TALLY_PREFIX)
            if not book.touched(digest) and Tally.loads(str(row.value)) is None:
                # Closed in an earlier batch (or unreadable), untouched in this one.
                tx.conn.execute(delete(node_state).where(node_state.c.key == row.key))
                book.known(digest, None)
                continue
            tally = book.get(tx, digest)
            if tally is not None and (self.final or tally.due(tx.now, self.limits.interval)):
                tx.audit.append(tally.event(digest, tx.now, self.limits.interval))
                book.put(tx, digest, None)
                written += 1
        self._forget_idle_buckets(tx)
        return written

    def _forget_idle_buckets(self, tx: Tx) -> None:
        # A bucket idle for twice its refill time is full, as an absent one is.
        idle = 2 * self.limits.burst / self.limits.per_second
        tx.conn.execute(
            delete(rate_buckets).where(
                rate_buckets.c.party.startswith(BUCKET_PREFIX, autoescape=True),
                rate_buckets.c.updated_at < tx.now - idle,
            )
        )

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - run never refuses
        raise problem


def pending(reader: Engine, now: float, interval: float) -> tuple[bool, bool]:
    """(any tally stored, any tally due or closed) — read without the writer's lock."""
    with reader.connect() as conn:
        values = _tally_values(conn)
    due = any(tally is None or tally.due(now, interval) for tally in map(Tally.loads, values))
    return bool(values), due


def _tally_values(conn: Connection) -> list[str]:
    rows = conn.execute(
        select(node_state.c.value).where(node_state.c.key.startswith(TALLY_PREFIX, autoescape=True))
    )
    return [str(value) for value in rows.scalars()]


def flush_due(
    committer: GroupCommitter,
    reader: Engine,
    *,
    clock: Callable[[], float],
    limits: RefusalLimits,
    final: bool = False,
) -> int:
    """Write due tallies (all when `final`); the number of aggregate entries written.
    Nothing is submitted to the writer when no tally needs it."""
    stored, due = pending(reader, clock(), limits.interval)
    if not (due or (final and stored)):
        return 0
    written: int = committer.run_sync(FlushTallies(limits, final=final))
    return written


async def run_periodically(
    committer: GroupCommitter,
    reader: Engine,
    *,
    clock: Callable[[], float],
    limits: RefusalLimits,
    stopping: asyncio.Event,
    every: float = 1.0,
) -> None:
    """Flush due tallies every `every` seconds; all of them once `stopping` is set."""
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), every)
        except TimeoutError:
            pass
        final = stopping.is_set()
        try:
            await asyncio.to_thread(
                flush_due, committer, reader, clock=clock, limits=limits, final=final
            )
        except Exception as exc:
            # The tallies stay in the database: the next flush, in any process, writes them.
            log.warning("refusal tallies not flushed: %s", type(exc).__name__)
        if final:
            return


def trusted_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
