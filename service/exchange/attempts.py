"""Recording delivery attempts: the outbox row, the attempt, its audit entries, atomically."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, select, update

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import delivery_attempts, messages, outbox, signed_versions
from service.ledger.cache import BatchCache, OutboxClaim
from service.ledger.committer import Tx, Unit, row_key
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.problems import Problem


@dataclass(frozen=True)
class SignedCopy:
    version: int
    iat: int
    digest: str
    jws: bytes

    @functools.cached_property
    def envelope(self) -> Envelope:
        """The copy's envelope, parsed once: a delivery reads it up to four times (its
        attachments, their sizes, the receipt's check, the stored body). It lives as
        long as the copy does, no longer."""
        return envelope.parse_payload(jws.parse_compact(self.jws).payload)


@dataclass(frozen=True)
class AttemptResult:
    """`outcome`: delivered, retry, refused (final 4xx), or conflict (resolved by the worker)."""

    outcome: str
    http_status: int | None
    code: str | None
    error: str | None
    retry_after: float | None = None
    receipt: bytes | None = None
    receipt_index: int | None = None
    receipt_digest: str | None = None
    duration_ms: float = 0.0


@dataclass
class ResignUnit:
    """Keep a freshly signed copy before it is sent, so the bytes sent are always known.

    `stored` and `stored_version` are the copy's columns as the message's body and as
    its signed copy (`Bodies.message`, `Bodies.version`), sealed before the lock."""

    message_pk: int
    copy: SignedCopy
    stored: dict[str, Any]
    stored_version: dict[str, Any]

    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> None:
        c = self.copy
        tx.defer(
            signed_versions,
            {
                "message_pk": self.message_pk,
                "version": c.version,
                "iat": c.iat,
                "digest": c.digest,
                **self.stored_version,
            },
        )
        tx.defer_update(
            messages, "pk", self.message_pk, {**self.stored, "digest": c.digest, "iat": c.iat}
        )

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing to record: the caller sees the problem and the lease lets the row be retried."""


@dataclass
class RenewUnit:
    """Extend a delivery's lease while it is still being sent (a long attachment
    transfer): True while `owner` holds the message, False once another worker does."""

    message_pk: int
    owner: str
    lease_seconds: float

    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> bool:
        o = outbox.c
        renewed = tx.conn.execute(
            update(outbox)
            .where(
                o.message_pk == self.message_pk, o.lease_owner == self.owner, o.state == "pending"
            )
            .values(lease_until=tx.now + self.lease_seconds)
        ).rowcount
        return bool(renewed == 1)

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing to record: the transfer stops and the lease lets the row be retried."""


def prefetch_outbox(conn: Connection, cache: BatchCache, units: Sequence[Unit[Any]]) -> None:
    """Read the outbox rows of this batch's AttemptUnits in one query."""
    pks = sorted({u.job_pk for u in units if isinstance(u, AttemptUnit)})
    for start in range(0, len(pks), 500):
        for row in conn.execute(
            select(outbox.c.message_pk, outbox.c.state, outbox.c.lease_owner).where(
                outbox.c.message_pk.in_(pks[start : start + 500])
            )
        ):
            cache.outbox.load(int(row.message_pk), OutboxClaim(row.state, row.lease_owner))
    cache.outbox.prefetched = True


@dataclass
class AttemptUnit:
    """Record one attempt: its row, its audit entries, the outbox and message state.

    Its writes are deferred to the end of the batch (nothing can refuse after the outbox
    row is read), so it needs no savepoint; the row's new state is left in `tx.cache`
    for later units of the same batch.
    """

    job_pk: int
    message_id: str
    recipient: str
    attempt: int
    result: AttemptResult
    copy: SignedCopy
    max_attempts: int
    next_at: float
    owner: str
    # The copy's columns as the message's body (`Bodies.message`): stored on delivery.
    stored: dict[str, Any]
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> str:
        r = self.result
        outbox_rows = tx.cache.outbox
        if self.job_pk not in outbox_rows and not outbox_rows.prefetched:
            prefetch_outbox(tx.conn, tx.cache, [self])
        row = outbox_rows.get(self.job_pk)
        if row is None:
            raise Problem("not-found", f"no outbox row for message {self.message_id}")
        state, lease_owner = row
        final = self._final_state(state)
        index = tx.audit.append(self._event(ev.DELIVERY_ATTEMPT, final, code=r.code))
        tx.defer(
            delivery_attempts,
            {
                "pk": row_key(index),
                "message_pk": self.job_pk,
                "attempt": self.attempt,
                "at": tx.now,
                "outcome": r.outcome,
                "http_status": r.http_status,
                "error": ": ".join(part for part in (r.code, r.error) if part) or None,
                "duration_ms": r.duration_ms,
            },
        )
        if r.outcome == "delivered":
            tx.audit.append(
                self._event(
                    ev.RECEIPT_RECEIVED,
                    "verified",
                    digest=r.receipt_digest,
                    detail={
                        "partner_audit_index": r.receipt_index,
                        "message_digest": self.copy.digest,
                    },
                )
            )
        values: dict[str, Any] = {
            "attempts": self.attempt,
            "lease_owner": None,
            "lease_until": None,
            "last_error": (r.code or r.error),
        }
        msg_values: dict[str, Any] = {}
        if final == "delivered":
            values["state"] = "delivered"
            # The receipt covers the copy that was delivered, which after a conflict is
            # an older one than the message row's latest re-signed copy.
            msg_values = {
                "status": "delivered",
                "receipt": r.receipt,
                "receipt_audit_index": r.receipt_index,
                **self.stored,
                "digest": self.copy.digest,
                "iat": self.copy.iat,
            }
        elif final in ("failed", "refused"):
            values["state"] = "failed"
            msg_values = {"status": final}
        else:
            values["next_attempt_at"] = self.next_at
        if state == "delivered":
            # Another worker already recorded the delivery: keep it.
            values = {"lease_owner": None, "lease_until": None}
            msg_values = {}
        elif final == "retry" and lease_owner not in (None, self.owner):
            # This worker's lease expired and another worker holds the message now:
            # the attempt is recorded; the schedule and the lease stay that worker's.
            values = {}
        tx.defer_update(outbox, "message_pk", self.job_pk, values)
        tx.defer_update(messages, "pk", self.job_pk, msg_values)
        outbox_rows.claim(
            self.job_pk,
            OutboxClaim(values.get("state", state), values.get("lease_owner", lease_owner)),
        )
        return final

    def _final_state(self, current: str) -> str:
        outcome = self.result.outcome
        if outcome == "delivered":
            return "delivered"
        if outcome == "refused":
            return "refused"
        if self.attempt >= self.max_attempts:
            return "failed"
        return "retry"

    def _event(self, name: str, outcome: str, **kw: Any) -> AuditEvent:
        detail = dict(kw.pop("detail", {}))
        detail.update(
            {
                "attempt": self.attempt,
                "http_status": self.result.http_status,
                "version": self.copy.version,
            }
        )
        return AuditEvent(
            event=name,
            outcome=outcome,
            party=self.recipient,
            recipient=self.recipient,
            message_id=self.message_id,
            digest=kw.pop("digest", self.copy.digest),
            detail={k: v for k, v in detail.items() if v is not None},
            **kw,
        )

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing to record: the caller sees the problem and the lease lets the row be retried."""
