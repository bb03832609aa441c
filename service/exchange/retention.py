"""Retention: purge stored message bodies once they are older than the retention period.

A purge sets `jws = NULL` and `purged_at` on inbound messages and on outbound messages
whose delivery is over (delivered or failed), and deletes their signed copies. The
rest of the row stays: ids, parties, type, digest and the signed receipt, so an
idempotent re-delivery of a purged message still gets its original receipt. The audit
log is never purged. Each batch is one group-commit unit that appends one
`retention.purge` entry with the count and the cutoff, so the purge is itself audited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import delete, select, update

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.clock import rfc3339
from service.db.tables import messages, outbox, signed_versions
from service.ledger.committer import GroupCommitter, Tx
from service.protocol.problems import Problem

log = logging.getLogger("migex.retention")

DAY = 86400.0
BATCH_SIZE = 500
FINISHED_STATES = ("delivered", "failed")


def cutoff_for(now: float, body_days: int) -> float:
    """Bodies of messages stored before this instant are purged."""
    return now - body_days * DAY


@dataclass(frozen=True)
class PurgeBatch:
    inbound: int
    outbound: int
    audit_index: int | None

    @property
    def count(self) -> int:
        return self.inbound + self.outbound


@dataclass(frozen=True)
class PurgeUnit:
    """Purge up to `limit` message bodies stored before `cutoff`; one audit entry."""

    cutoff: float
    limit: int = BATCH_SIZE
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> PurgeBatch:
        m = messages.c
        finished = select(outbox.c.message_pk).where(outbox.c.state.in_(FINISHED_STATES))
        rows = tx.conn.execute(
            select(m.pk, m.direction)
            .where(
                m.jws.is_not(None),
                m.created_at < self.cutoff,
                (m.direction == "in") | m.pk.in_(finished),
            )
            .order_by(m.pk)
            .limit(self.limit)
        ).all()
        if not rows:
            return PurgeBatch(0, 0, None)
        pks = [int(r.pk) for r in rows]
        inbound = sum(1 for r in rows if r.direction == "in")
        tx.conn.execute(update(messages).where(m.pk.in_(pks)).values(jws=None, purged_at=tx.now))
        tx.conn.execute(delete(signed_versions).where(signed_versions.c.message_pk.in_(pks)))
        index = tx.audit.append(
            AuditEvent(
                ev.RETENTION_PURGE,
                "purged",
                detail={
                    "count": len(pks),
                    "inbound": inbound,
                    "outbound": len(pks) - inbound,
                    "cutoff": rfc3339(self.cutoff),
                },
            )
        )
        return PurgeBatch(inbound, len(pks) - inbound, index)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """A failed batch changes nothing; the next run purges what it left."""


@dataclass(frozen=True)
class PurgeReport:
    cutoff: float
    inbound: int
    outbound: int
    batches: int
    audit_indices: tuple[int, ...]

    @property
    def count(self) -> int:
        return self.inbound + self.outbound

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": rfc3339(self.cutoff),
            "purged": self.count,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "audit_indices": list(self.audit_indices),
        }


def purge_sync(
    committer: GroupCommitter, *, now: float, body_days: int, batch_size: int = BATCH_SIZE
) -> PurgeReport:
    """Purge every body older than the retention period, batch by batch."""
    cutoff = cutoff_for(now, body_days)
    inbound = outbound = batches = 0
    indices: list[int] = []
    while True:
        batch: PurgeBatch = committer.run_sync(PurgeUnit(cutoff, batch_size))
        if batch.audit_index is None:
            break
        batches += 1
        inbound += batch.inbound
        outbound += batch.outbound
        indices.append(batch.audit_index)
        if batch.count < batch_size:
            break
    return PurgeReport(cutoff, inbound, outbound, batches, tuple(indices))


async def purge(
    committer: GroupCommitter, *, now: float, body_days: int, batch_size: int = BATCH_SIZE
) -> PurgeReport:
    """`purge_sync` off the event loop."""
    return await asyncio.to_thread(
        purge_sync, committer, now=now, body_days=body_days, batch_size=batch_size
    )


async def run_periodically(
    committer: GroupCommitter,
    *,
    clock: Callable[[], float],
    body_days: int,
    interval: float,
    stopping: asyncio.Event,
) -> None:
    """Purge now and then every `interval` seconds until `stopping` is set.

    A failed run (database unavailable) is logged and retried at the next interval.
    """
    while not stopping.is_set():
        try:
            report = await purge(committer, now=clock(), body_days=body_days)
        except Exception as exc:
            log.warning("retention purge failed: %s", type(exc).__name__)
        else:
            if report.count:
                log.info(
                    "retention purge: %d message bodies older than %s",
                    report.count,
                    rfc3339(report.cutoff),
                )
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except TimeoutError:
            pass
