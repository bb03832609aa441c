"""Outbound messages: the node's own agency hands it a record; the node checks its own
rules, removes the fields the partner may not receive, validates, signs and queues it
in the transactional outbox (message, first signed copy, outbox row and audit entry in
one commit)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from asyncio import to_thread
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import select

from service.attachments.files import check_held
from service.attachments.limits import check_declared, declared_in, summary
from service.attachments.rows import defer_attachments
from service.attachments.store import AttachmentStore
from service.attachments.uploads import Context, check_json
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import messages, outbox, signed_versions
from service.exchange.attempts import SignedCopy
from service.exchange.jobs import Courier, Job, Lease
from service.exchange.rows import defer_message
from service.ledger.cache import OutboxClaim
from service.ledger.committer import AuditOnly, GroupCommitter, Tx
from service.partners.agreements import check_agreement
from service.partners.fields import filter_fields
from service.partners.registry import PartnerRegistry
from service.partners.rules import decide
from service.privacy.atrest import PLAINTEXT, Bodies
from service.privacy.index import defer_disclosure
from service.privacy.subjects import Disclosed, disclosure_of
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.jsonstrict import check_bounds
from service.protocol.keys import SigningKey
from service.protocol.msgid import new_message_id
from service.protocol.problems import Problem
from service.protocol.receipts import message_digest
from service.records.registry import validate_body
from service.records.statistics import OBSERVATIONS_MEDIA_TYPE


@dataclass(frozen=True)
class OutboundRequest:
    to: str
    type: str
    agreement: str
    purpose: str
    body: dict[str, Any]
    reply_to: str | None = None


def new_envelope(req: OutboundRequest, *, iss: str, body: dict[str, Any], now: float) -> Envelope:
    """A fresh message from `iss`: a new UUIDv7 id, signed now."""
    return Envelope(
        v=1,
        id=new_message_id(now),
        iss=iss,
        aud=req.to,
        iat=int(now),
        type=req.type,
        agreement=req.agreement,
        purpose=req.purpose,
        reply_to=req.reply_to,
        body=body,
    )


@dataclass(frozen=True)
class Prepared:
    env: Envelope
    jws: bytes
    digest: str
    rule_id: str
    removed: list[str]
    # What the signed copy discloses about persons; None: no person, or no index kept.
    disclosed: Disclosed | None = None
    # The copy's columns as stored in `messages` and as signed copy 1 (sealed or not).
    stored: dict[str, Any] = dataclasses.field(kw_only=True)
    stored_version: dict[str, Any] = dataclasses.field(kw_only=True)


def _members(req: OutboundRequest) -> dict[str, Any]:
    return {"aud": req.to, "type": req.type, "agreement": req.agreement, "purpose": req.purpose}


def _event(req: OutboundRequest, node: str, name: str, outcome: str, **kw: Any) -> AuditEvent:
    return AuditEvent(
        event=name,
        outcome=outcome,
        party=req.to,
        sender=node,
        recipient=req.to,
        type=req.type,
        agreement=req.agreement,
        purpose=req.purpose,
        **kw,
    )


def refusal_event(
    req: OutboundRequest, node: str, problem: Problem, message_id: str | None = None
) -> AuditEvent:
    event = _event(
        req,
        node,
        ev.SEND_REFUSED,
        "refused",
        code=problem.code,
        message_id=message_id,
        detail={"status": problem.status},
    )
    # A member that is not a valid envelope value is recorded as null: the log and its
    # search columns hold only what the protocol allows (an accepted request's members
    # were checked by `prepare`).
    invalid = {e["path"][1:] for e in envelope.member_errors(_members(req))}
    if not invalid:
        return event
    to = None if "aud" in invalid else req.to
    return dataclasses.replace(
        event,
        party=to,
        recipient=to,
        type=None if "type" in invalid else req.type,
        agreement=None if "agreement" in invalid else req.agreement,
        purpose=None if "purpose" in invalid else req.purpose,
    )


@dataclass(frozen=True)
class OutboundPolicy:
    """What checks and signs the agency's own messages: built once from the node's
    configuration (as `InboundPolicy` is), used by the API and the CLI alike."""

    node_party: str
    registry: PartnerRegistry
    key: SigningKey
    max_depth: int
    max_members: int
    max_observations: int
    # The disclosure index's key (privacy.subject_key_file); None keeps no index.
    subject_key: bytes | None = None
    # How bodies are stored: sealed when a KEK is configured (privacy.kek_files).
    bodies: Bodies = PLAINTEXT


def prepare(req: OutboundRequest, policy: OutboundPolicy, now: float) -> Prepared:
    """Check our own rules, cut fields, validate, sign. Raises Problem to refuse."""
    node, registry = policy.node_party, policy.registry
    errors = envelope.member_errors({**_members(req), "reply_to": req.reply_to})
    if errors:
        summary = "; ".join(f"{e['path'][1:]} {e['message']}" for e in errors)
        raise Problem("invalid-parameters", f"cannot send: {summary}", extra={"errors": errors})
    partner = registry.partner(req.to)
    if partner is None:
        raise Problem("forbidden", f"{req.to} is not a configured partner of this node")
    check_agreement(
        registry.agreements,
        agreement_id=req.agreement,
        iss=node,
        aud=req.to,
        msg_type=req.type,
        purpose=req.purpose,
        on=datetime.fromtimestamp(now, tz=UTC).date(),
    )
    decision = decide(
        partner,
        direction="outbound",
        msg_type=req.type,
        agreement=req.agreement,
        purpose=req.purpose,
    )
    try:
        check_bounds(req.body, max_depth=policy.max_depth, max_members=policy.max_members)
    except ValueError as exc:
        raise Problem(
            "schema",
            f"body refused: {exc}",
            extra={"errors": [{"path": "/body", "message": str(exc)}]},
        ) from None
    body, removed = filter_fields(req.body, decision.fields or ())
    validate_body(
        req.type,
        body,
        max_observations=policy.max_observations,
        agreement=req.agreement,
        purpose=req.purpose,
    )
    check_declared(partner.party, partner.attachments, declared_in(body))
    env = new_envelope(req, iss=node, body=body, now=now)
    token = jws.sign_compact(policy.key, envelope.encode_payload(env))
    # The fields disclosed are those of the body as signed, after the rule's cut.
    disclosed = (
        None if policy.subject_key is None else disclosure_of(policy.subject_key, req.type, body)
    )
    return Prepared(
        env,
        token,
        message_digest(token),
        decision.rule_id,
        removed,
        disclosed,
        stored=policy.bodies.message(token, node, env.id),
        stored_version=policy.bodies.version(token, env.id, 1),
    )


@dataclass(frozen=True)
class Queued:
    message_id: str
    audit_index: int
    removed: list[str]
    # The message's key, and whether its outbox row was leased by its queueing (and
    # its job handed to this process's delivery worker).
    pk: int = dataclasses.field(default=0, kw_only=True)
    handed: bool = dataclasses.field(default=False, kw_only=True)


@dataclass
class QueueUnit:
    """Store the message, its first signed copy, the outbox row and the audit entry.

    The rows are written through `tx.defer` after the only check that can refuse, so
    the unit needs no savepoint. With a `lease`, the outbox row is written leased to the
    delivery worker that reserved it, exactly as a claim would lease it, so that the
    worker can send the message without a claim of its own (docs/architecture.md).
    """

    req: OutboundRequest
    prepared: Prepared
    store: AttachmentStore | None = None
    lease: Lease | None = None
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> Queued:
        p = self.prepared
        env = p.env
        if env.reply_to is not None:
            self._check_reply(tx)
        declared = declared_in(env.body)
        if declared:
            if self.store is None:
                raise Problem("attachments-not-allowed", "this node keeps no files")
            check_held(tx.conn, self.store, declared)
        detail: dict[str, Any] = {"removed_fields": p.removed} if p.removed else {}
        if declared:
            detail["attachments"] = summary(declared)
        index = tx.audit.append(
            _event(
                self.req,
                env.iss,
                ev.MESSAGE_QUEUED,
                "queued",
                message_id=env.id,
                rule=p.rule_id,
                digest=p.digest,
                detail=detail,
            )
        )
        pk = defer_message(
            tx,
            env,
            direction="out",
            digest=p.digest,
            body=p.stored,
            status="queued",
            rule_id=p.rule_id,
            audit_index=index,
            removed_fields=json.dumps(p.removed) if p.removed else None,
        )
        if p.disclosed is not None:
            defer_disclosure(
                tx,
                env,
                p.disclosed,
                message_pk=pk,
                direction="out",
                audit_index=index,
                removed=p.removed,
            )
        tx.defer(
            signed_versions,
            {
                "message_pk": pk,
                "version": 1,
                "iat": env.iat,
                "digest": p.digest,
                **p.stored_version,
            },
        )
        defer_attachments(tx, pk, declared)
        tx.defer(
            outbox,
            {
                "message_pk": pk,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": tx.now,
                "lease_owner": None if self.lease is None else self.lease.owner,
                "lease_until": None if self.lease is None else tx.now + self.lease.seconds,
                "last_error": None,
                "created_at": tx.now,
            },
        )
        return Queued(env.id, index, p.removed, pk=pk, handed=self.lease is not None)

    def _check_reply(self, tx: Tx) -> None:
        found = tx.conn.execute(
            select(messages.c.pk).where(
                messages.c.direction == "in",
                messages.c.sender == self.req.to,
                messages.c.message_id == self.prepared.env.reply_to,
            )
        ).first()
        if found is None:
            raise Problem(
                "invalid-parameters",
                f"reply_to {self.prepared.env.reply_to} is not a message received from {self.req.to}",
            )

    def refused(self, tx: Tx, problem: Problem) -> None:
        tx.audit.append(
            refusal_event(self.req, self.prepared.env.iss, problem, self.prepared.env.id)
        )


@dataclass
class RequeueUnit:
    """An operator sends a failed message again: audited, refused once its body was purged.

    Its writes are deferred like an attempt's, so the two apply in batch order."""

    node: str
    message_id: str
    operator: str
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> None:
        m = messages.c
        row = tx.conn.execute(
            select(m.pk, m.recipient, m.type, m.agreement, m.purpose, m.purged_at, outbox.c.state)
            .join(outbox, outbox.c.message_pk == m.pk)
            .where(m.direction == "out", m.sender == self.node, m.message_id == self.message_id)
        ).first()
        if row is None:
            raise Problem("not-found", f"no outbound message {self.message_id}")
        # An attempt recorded earlier in this batch is not written yet; its state counts.
        claimed = tx.cache.outbox.get(int(row.pk))
        state = row.state if claimed is None else claimed.state
        if state != "failed":
            raise Problem(
                "invalid-parameters", f"message {self.message_id} is not in the failed state"
            )
        if row.purged_at is not None:
            raise Problem(
                "invalid-parameters",
                f"message {self.message_id} was purged under the retention period; it cannot be sent",
            )
        tx.defer_update(
            outbox,
            "message_pk",
            int(row.pk),
            {
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": tx.now,
                "lease_owner": None,
                "lease_until": None,
            },
        )
        tx.defer_update(messages, "pk", int(row.pk), {"status": "queued"})
        tx.cache.outbox.claim(int(row.pk), OutboxClaim("pending", None))
        tx.audit.append(
            AuditEvent(
                ev.MESSAGE_REQUEUED,
                "queued",
                party=row.recipient,
                sender=self.node,
                recipient=row.recipient,
                message_id=self.message_id,
                type=row.type,
                agreement=row.agreement,
                purpose=row.purpose,
                detail={"operator": self.operator},
            )
        )

    def refused(self, tx: Tx, problem: Problem) -> None:
        """A refused retry changes nothing; the operator sees the problem."""


async def queue_outbound(
    policy: OutboundPolicy,
    committer: GroupCommitter,
    req: OutboundRequest,
    now: float,
    *,
    inline: bool,
    store: AttachmentStore | None = None,
    courier: Courier | None = None,
) -> Queued:
    """Check, cut, validate and sign one of the agency's messages, then queue it.

    A refusal is audited (`send.refused`) and raised as the Problem. `inline` checks and
    signs on the calling event loop; otherwise in a thread, so that a large record
    (statistics) does not hold up other requests. When `courier` (this process's
    delivery worker, on the same event loop) has room, the queueing leases the message
    to it and hands it the job: the message is sent without a claim of its own.
    """
    work = functools.partial(prepare, req, policy, now)
    try:
        prepared = work() if inline else await to_thread(work)
        if store is not None and any(
            d.media_type == OBSERVATIONS_MEDIA_TYPE for d in declared_in(prepared.env.body)
        ):
            await to_thread(check_attached_json, store, prepared.env, policy)
    except Problem as problem:
        await committer.run(AuditOnly([refusal_event(req, policy.node_party, problem)]))
        raise
    lease = courier.reserve() if courier is not None else None
    if courier is None or lease is None:
        queued: Queued = await committer.run(QueueUnit(req, prepared, store))
        return queued
    return await _queue_and_hand(committer, QueueUnit(req, prepared, store, lease), courier)


async def _queue_and_hand(committer: GroupCommitter, unit: QueueUnit, courier: Courier) -> Queued:
    """Queue a message leased to `courier`; hand it the job once the row is committed,
    or give the reservation back if it was not.

    The hand-over does not wait on the request: one cancelled while its unit is in the
    writer's queue still hands over the committed job, so its lease is not left to
    expire unused (it would be: no claim takes a leased row before then)."""
    committed = asyncio.ensure_future(committer.run(unit))

    def settle(done: asyncio.Future[Queued]) -> None:
        if done.cancelled() or done.exception() is not None:
            courier.release()
        else:
            courier.hand(first_job(unit.prepared, done.result().pk))

    committed.add_done_callback(settle)
    return await asyncio.shield(committed)


def first_job(prepared: Prepared, pk: int) -> Job:
    """The job of a message just queued: no attempt yet, its first signed copy (the
    bytes `QueueUnit` stored, and the envelope they were signed from, so the worker
    needs neither read them back nor parse them)."""
    env = prepared.env
    copy = SignedCopy(1, env.iat, prepared.digest, prepared.jws, env)
    return Job(pk, env.id, env.aud, 0, [copy])


def check_attached_json(store: AttachmentStore, env: Envelope, policy: OutboundPolicy) -> None:
    """A JSON attachment (a statistics dataset's observations) is checked before it is
    sent exactly as the partner will check it (docs/protocol.md)."""
    ctx = Context(
        env.type,
        env.body,
        frozenset(),
        policy.max_observations,
        policy.max_depth,
        policy.max_members,
    )
    for item in declared_in(env.body):
        if item.media_type == OBSERVATIONS_MEDIA_TYPE and store.exists(item.digest):
            with store.open(item.digest) as stream:
                data = stream.read()
            check_json(data, item, ctx)
