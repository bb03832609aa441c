"""Retention: purge stored message bodies once they are older than their retention period.

The period depends on the category of record and, where configured, the agreement
(exchange/periods.py); a purge runs each `PurgeRule` in turn. It sets `jws = NULL` and
`purged_at` on inbound messages and on outbound messages whose delivery is over
(delivered or failed), and deletes their signed copies. The rest of the row stays:
ids, parties, type, digest and the signed receipt, so an idempotent re-delivery of a
purged message still gets its original receipt. The audit log is never purged.

A message of a case under a legal hold (exchange/holds.py) is not purged: one whose
`case_reference` is held, one that answers such a message, or one such a message
answers. Each batch is one group-commit unit that appends one `retention.purge` entry
with its category, the counts and the cutoff, so the purge is itself audited.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select, update

from service.attachments.store import AttachmentStore
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.clock import rfc3339
from service.db.tables import (
    attachments,
    legal_holds,
    message_cases,
    messages,
    outbox,
    signed_versions,
)
from service.db.tables import files as files_table
from service.exchange.awaiting import ExpireUnit
from service.exchange.periods import DAY, PurgeRule, RetentionPolicy
from service.ledger.committer import GroupCommitter, Tx
from service.privacy.atrest import PLAINTEXT, Bodies
from service.protocol.problems import Problem

log = logging.getLogger("migex.retention")

__all__ = ["DAY", "PurgeReport", "PurgeUnit", "cutoff_for", "purge", "purge_sync"]

BATCH_SIZE = 500
FINISHED_STATES = ("delivered", "failed")


def cutoff_for(now: float, body_days: int) -> float:
    """Bodies of messages stored before this instant are purged."""
    return now - body_days * DAY


def _held() -> ColumnElement[bool]:
    """Messages of a case under an active legal hold, and their requests and replies."""
    m = messages.c
    active = select(legal_holds.c.case_digest).where(legal_holds.c.released_at.is_(None))
    held_pks = select(message_cases.c.message_pk).where(message_cases.c.case_digest.in_(active))
    other = messages.alias("held")
    held_ids = select(other.c.message_id).where(other.c.pk.in_(held_pks))
    held_replies_to = select(other.c.reply_to).where(
        other.c.pk.in_(held_pks), other.c.reply_to.is_not(None)
    )
    return or_(
        m.pk.in_(held_pks),
        and_(m.reply_to.is_not(None), m.reply_to.in_(held_ids)),
        m.message_id.in_(held_replies_to),
    )


def _due(rule: PurgeRule, cutoff: float) -> ColumnElement[bool]:
    """Messages of `rule` whose body is stored, older than `cutoff`, delivery over.

    The rows are found through `ix_messages_stored` (stored bodies by age), so a run
    reads the bodies still stored, never the history of those purged before; each
    candidate's delivery state is then looked up by its key."""
    m = messages.c
    stored = messages.alias("stored")
    candidates = select(stored.c.pk).where(stored.c.jws.is_not(None), stored.c.created_at < cutoff)
    o = outbox.c
    finished = exists().where(o.message_pk == m.pk, o.state.in_(FINISHED_STATES))
    conditions = [
        m.pk.in_(candidates),
        m.jws.is_not(None),
        (m.direction == "in") | finished,
    ]
    if rule.types is None:
        conditions.append(m.type.not_in(rule.known_types))
    else:
        conditions.append(m.type.in_(rule.types))
    if rule.agreement is not None:
        conditions.append(m.agreement == rule.agreement)
    elif rule.excluded:
        conditions.append(m.agreement.not_in(rule.excluded))
    return and_(*conditions)


@dataclass(frozen=True)
class PurgeBatch:
    inbound: int
    outbound: int
    audit_index: int | None
    # Counted by the rule's last batch: its due messages that a legal hold keeps.
    held: int = 0
    # Attachment files no unpurged message names any more: removed once committed.
    orphaned: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return self.inbound + self.outbound


@dataclass(frozen=True)
class PurgeUnit:
    """For each rule, purge up to `limit` bodies of its messages stored before its cutoff,
    except held ones; one audit entry per rule that purged something. One unit for all
    rules, so a purge with nothing to do takes the writer once, as it always did."""

    now: float
    rules: tuple[PurgeRule, ...]
    limit: int = BATCH_SIZE
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> list[tuple[PurgeRule, PurgeBatch]]:
        return [(rule, self._purge(tx, rule, rule.cutoff(self.now))) for rule in self.rules]

    def _purge(self, tx: Tx, rule: PurgeRule, cutoff: float) -> PurgeBatch:
        m = messages.c
        rows = tx.conn.execute(
            select(m.pk, m.direction)
            .where(_due(rule, cutoff), not_(_held()))
            .order_by(m.pk)
            .limit(self.limit)
        ).all()
        held = _count_held(tx, rule, cutoff) if len(rows) < self.limit else 0
        if not rows:
            return PurgeBatch(0, 0, None, held)
        pks = [int(r.pk) for r in rows]
        inbound = sum(1 for r in rows if r.direction == "in")
        tx.conn.execute(
            update(messages)
            .where(m.pk.in_(pks))
            .values(
                # The ciphertext and its wrapped data key go together (docs/privacy.md).
                jws=None,
                kek_id=None,
                wrapped_key=None,
                purged_at=tx.now,
            )
        )
        tx.conn.execute(delete(signed_versions).where(signed_versions.c.message_pk.in_(pks)))
        files, orphaned = _purge_attachments(tx, pks)
        detail: dict[str, Any] = {
            "category": rule.category,
            "count": len(pks),
            "inbound": inbound,
            "outbound": len(pks) - inbound,
            "cutoff": rfc3339(cutoff),
        }
        if files:
            detail["attachments"] = files
            detail["files_removed"] = len(orphaned)
        if rule.agreement is not None:
            detail["agreement"] = rule.agreement
        index = tx.audit.append(AuditEvent(ev.RETENTION_PURGE, "purged", detail=detail))
        return PurgeBatch(inbound, len(pks) - inbound, index, held, orphaned)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """A failed batch changes nothing; the next run purges what it left."""


def _purge_attachments(tx: Tx, pks: list[int]) -> tuple[int, tuple[str, ...]]:
    """Mark the purged messages' attachment rows purged; return how many, and the
    digests no unpurged message names any more (their files are removed after the
    commit, and the agency's record of them with the rows)."""
    a = attachments.c
    named = sorted({r[0] for r in tx.conn.execute(select(a.digest).where(a.message_pk.in_(pks)))})
    if not named:
        return 0, ()
    marked = tx.conn.execute(
        update(attachments).where(a.message_pk.in_(pks)).values(purged_at=tx.now)
    ).rowcount
    kept = {
        r[0]
        for r in tx.conn.execute(
            select(a.digest).where(a.digest.in_(named), a.purged_at.is_(None)).distinct()
        )
    }
    orphaned = tuple(d for d in named if d not in kept)
    if orphaned:
        tx.conn.execute(delete(files_table).where(files_table.c.digest.in_(orphaned)))
    return int(marked), orphaned


def _count_held(tx: Tx, rule: PurgeRule, cutoff: float) -> int:
    """How many of the rule's due messages a legal hold keeps."""
    found = tx.conn.execute(
        select(func.count()).select_from(messages).where(_due(rule, cutoff), _held())
    ).scalar_one()
    return int(found)


@dataclass
class CategoryReport:
    """What one category's purge did: counts, and the due messages kept under a hold."""

    days: int
    inbound: int = 0
    outbound: int = 0
    held: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "purged": self.inbound + self.outbound,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "held": self.held,
        }


@dataclass(frozen=True)
class PurgeReport:
    cutoff: float
    inbound: int
    outbound: int
    batches: int
    audit_indices: tuple[int, ...]
    categories: dict[str, CategoryReport] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.inbound + self.outbound

    @property
    def held(self) -> int:
        return sum(c.held for c in self.categories.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": rfc3339(self.cutoff),
            "purged": self.count,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "held": self.held,
            "categories": {name: c.as_dict() for name, c in self.categories.items()},
            "audit_indices": list(self.audit_indices),
        }


def purge_sync(
    committer: GroupCommitter,
    *,
    now: float,
    body_days: int | None = None,
    policy: RetentionPolicy | None = None,
    batch_size: int = BATCH_SIZE,
    store: AttachmentStore | None = None,
    bodies: Bodies = PLAINTEXT,
) -> PurgeReport:
    """Purge every body older than its retention period, in batches of every rule.

    `policy` gives the periods; `body_days` alone is one period for every category.
    Attachment files that no unpurged message names are removed from `store` once the
    batch that purged their last message has committed."""
    if policy is None:
        if body_days is None:
            raise ValueError("give a retention policy or body_days")
        policy = RetentionPolicy(body_days)
    inbound = outbound = batches = 0
    indices: list[int] = []
    categories = {
        name: CategoryReport(policy.days_for(name))
        for name in dict.fromkeys(rule.category for rule in policy.rules())
    }
    if store is not None:
        # Uploads whose window closed: expired (and audited) first, files dropped after.
        for key in committer.run_sync(ExpireUnit(now, bodies)):
            store.discard(key)
    pending = tuple(policy.rules())
    while pending:
        done: list[tuple[PurgeRule, PurgeBatch]] = committer.run_sync(
            PurgeUnit(now, pending, batch_size)
        )
        for rule, batch in done:
            if store is not None:
                for digest in batch.orphaned:
                    store.delete(digest)
            report = categories[rule.category]
            report.held += batch.held
            report.inbound += batch.inbound
            report.outbound += batch.outbound
            inbound += batch.inbound
            outbound += batch.outbound
            if batch.audit_index is not None:
                batches += 1
                indices.append(batch.audit_index)
        # A rule that filled its batch may have more to purge.
        pending = tuple(rule for rule, batch in done if batch.count >= batch_size)
    return PurgeReport(
        cutoff_for(now, policy.default_days),
        inbound,
        outbound,
        batches,
        tuple(indices),
        categories,
    )


async def purge(
    committer: GroupCommitter,
    *,
    now: float,
    body_days: int | None = None,
    policy: RetentionPolicy | None = None,
    batch_size: int = BATCH_SIZE,
    store: AttachmentStore | None = None,
    bodies: Bodies = PLAINTEXT,
) -> PurgeReport:
    """`purge_sync` off the event loop."""
    return await asyncio.to_thread(
        functools.partial(
            purge_sync,
            committer,
            now=now,
            body_days=body_days,
            policy=policy,
            batch_size=batch_size,
            store=store,
            bodies=bodies,
        )
    )


async def run_periodically(
    committer: GroupCommitter,
    *,
    clock: Callable[[], float],
    body_days: int,
    interval: float,
    stopping: asyncio.Event,
    policy: RetentionPolicy | None = None,
    store: Callable[[], AttachmentStore] | None = None,
    bodies: Bodies = PLAINTEXT,
) -> None:
    """Purge now and then every `interval` seconds until `stopping` is set.

    A failed run (database unavailable) is logged and retried at the next interval.
    """
    while not stopping.is_set():
        try:
            report = await purge(
                committer,
                now=clock(),
                body_days=body_days,
                policy=policy,
                store=store() if store is not None else None,
                bodies=bodies,
            )
        except Exception as exc:
            log.warning("retention purge failed: %s", type(exc).__name__)
        else:
            if report.count:
                log.info(
                    "retention purge: %d message bodies (%s)",
                    report.count,
                    ", ".join(
                        f"{name} {c.inbound + c.outbound}"
                        for name, c in report.categories.items()
                        if c.inbound + c.outbound
                    ),
                )
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except TimeoutError:
            pass
