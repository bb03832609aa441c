"""The inbound pipeline of docs/protocol.md section 6.

`check_inbound` runs the pure checks in the protocol's order (JWS syntax, header,
key, signature, envelope, key ownership, audience, skew, agreement, access rule) and
validates the body (unless told not to: the completion post of a message awaiting its
attachments, whose bytes were validated when first posted, `validate_checked` later if
they turn out not to be); `AcceptUnit` runs inside the group commit and does the checks
that need the database in the protocol's order (rate limit, then the schema result,
then uniqueness), then stores the message, its audit entry and its signed receipt.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, select

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import messages
from service.exchange.rows import defer_message
from service.ledger.cache import BatchCache, KnownMessage
from service.ledger.committer import Tx, Unit
from service.partners.agreements import check_agreement
from service.partners.registry import Partner, PartnerRegistry
from service.partners.rules import decide
from service.privacy.atrest import PLAINTEXT, Bodies
from service.privacy.index import defer_disclosure
from service.privacy.subjects import Disclosed, disclosure_of
from service.protocol import envelope, jsonstrict, jws
from service.protocol.envelope import KID_RE, Envelope
from service.protocol.keys import MAX_KID_LENGTH, SigningKey
from service.protocol.msgid import new_message_id
from service.protocol.problems import Problem
from service.protocol.receipts import message_digest, receipt_envelope
from service.records.registry import validate_body


@dataclass(frozen=True)
class InboundPolicy:
    node_party: str
    registry: PartnerRegistry
    clock_skew: int
    max_depth: int
    max_members: int
    max_observations: int
    # The disclosure index's key (privacy.subject_key_file); None keeps no index.
    subject_key: bytes | None = None
    # How bodies are stored: sealed when a KEK is configured (privacy.kek_files).
    bodies: Bodies = PLAINTEXT


_KID = re.compile(KID_RE)
# Messages larger than this are checked off the event loop (in a thread).
INLINE_LIMIT = 64 * 1024


def text_digest(text: str) -> str:
    """`sha-256:` and the unpadded base64url SHA-256 of `text` in UTF-8: how an entry
    records a value an unauthenticated sender chose, without keeping its text."""
    return message_digest(text.encode("utf-8", "surrogatepass"))


@dataclass
class Facts:
    """What is known about a message so far, for its audit entry.

    Nothing the sender chose enters the entry as text before the sender is proven
    (docs/protocol.md, clarification 3): a claimed `kid` is kept as text only when
    it has the form of a key id and names a key pinned for a partner (`known_kid`);
    any other claimed `kid` is kept as its digest. The envelope's members are used
    only once the message is `authentic`.
    """

    digest: str | None
    kid: str | None = None
    known_kid: bool = False
    env: Envelope | None = None
    authentic: bool = False
    rule: str | None = None
    # False once the signature verified with a pinned key: before, nothing proves who
    # sent the message, and its refusal is subject to the source's rate (refusals.py).
    unsigned: bool = True

    def claim_kid(self, kid: str, registry: PartnerRegistry) -> None:
        self.kid = kid
        self.known_kid = (
            len(kid) <= MAX_KID_LENGTH and _KID.fullmatch(kid) is not None and registry.pins(kid)
        )

    def event(
        self, name: str, outcome: str, *, code: str | None = None, **detail: Any
    ) -> AuditEvent:
        details: dict[str, Any] = {k: v for k, v in detail.items() if v is not None}
        env = self.env if self.authentic else None
        if not self.authentic and self.kid is not None:
            if self.known_kid:
                details["claimed_kid"] = self.kid
            else:
                details["claimed_kid_digest"] = text_digest(self.kid)
        return AuditEvent(
            event=name,
            outcome=outcome,
            party=env.iss if env else None,
            sender=env.iss if env else None,
            recipient=env.aud if env else None,
            message_id=env.id if env else None,
            type=env.type if env else None,
            agreement=env.agreement if env else None,
            purpose=env.purpose if env else None,
            code=code,
            rule=self.rule,
            digest=self.digest,
            detail=details,
        )

    def refusal(self, problem: Problem, *, source: str | None = None) -> AuditEvent:
        """The refusal's entry; `source` is the digest of an unproven sender's address."""
        return self.event(
            ev.MESSAGE_REFUSED, "refused", code=problem.code, status=problem.status, source=source
        )


class Refused(Exception):
    def __init__(self, problem: Problem, facts: Facts) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.facts = facts


@dataclass
class Checked:
    raw: bytes
    digest: str
    facts: Facts
    env: Envelope
    partner: Partner
    rule_id: str | None
    schema_problem: Problem | None
    warnings: list[dict[str, str]] = field(default_factory=list)
    stale_problem: Problem | None = None
    disclosed: Disclosed | None = None
    # The body's columns as stored (sealed before the writer's lock); None: refused.
    stored: dict[str, Any] | None = None
    # False: every check but the body's ran (`check_inbound(..., validate=False)`);
    # `schema_problem` and `warnings` are then unknown, and the message may be stored
    # only as the bytes of a pending row, which were validated when first posted.
    validated: bool = True


def check_inbound(
    policy: InboundPolicy, raw: bytes, now: float, *, validate: bool = True
) -> Checked:
    """Every check of section 6 that needs no database; with `validate` False, all but
    the body's validation (the caller runs `validate_checked` unless the bytes are
    those of a message awaiting its attachments, validated when first posted)."""
    digest = message_digest(raw)
    facts = Facts(digest=digest)
    try:
        checked = _check(policy, raw, now, digest, facts)
    except Problem as problem:
        raise Refused(problem, facts) from None
    if checked.stale_problem is not None:
        return checked
    if validate:
        return validate_checked(policy, checked)
    # What an unvalidated completion post is stored with, if its pending row matches:
    # what the body discloses is read from its members, without its validation.
    checked.disclosed = _disclosed(policy, checked)
    checked.stored = policy.bodies.message(raw, checked.env.iss, checked.env.id)
    return checked


def validate_checked(policy: InboundPolicy, checked: Checked) -> Checked:
    """`checked` with its body validated: the schema result, warnings, what it
    discloses and its columns as stored (sealed here, before the writer's lock)."""
    env = checked.env
    schema_problem: Problem | None = None
    warnings: list[dict[str, str]] = []
    try:
        validated = validate_body(
            env.type,
            env.body,
            max_observations=policy.max_observations,
            agreement=env.agreement,
            purpose=env.purpose,
        )
        warnings = [{"path": w.path, "message": w.message} for w in validated.warnings]
    except Problem as problem:
        schema_problem = problem
    if schema_problem is not None:
        return dataclasses.replace(
            checked, schema_problem=schema_problem, stored=None, validated=True
        )
    return dataclasses.replace(
        checked,
        warnings=warnings,
        disclosed=_disclosed(policy, checked),
        stored=checked.stored or policy.bodies.message(checked.raw, env.iss, env.id),
        validated=True,
    )


def _disclosed(policy: InboundPolicy, checked: Checked) -> Disclosed | None:
    if policy.subject_key is None:
        return None
    return disclosure_of(policy.subject_key, checked.env.type, checked.env.body)


def _check(policy: InboundPolicy, raw: bytes, now: float, digest: str, facts: Facts) -> Checked:
    """The checks before the body's: stops at a stale `iat` (decided under the lock)."""
    parsed = jws.parse_compact(raw)
    facts.claim_kid(parsed.kid, policy.registry)
    partner, key = policy.registry.key_for(parsed.kid, parsed.alg)
    jws.verify(parsed, key.public)
    facts.unsigned = False
    env = envelope.parse_payload(
        parsed.payload, max_depth=policy.max_depth, max_members=policy.max_members
    )
    facts.env = env
    if env.iss != partner.party:
        raise Problem("unknown-key", f"key {parsed.kid} does not belong to {env.iss}")
    facts.authentic = True
    if env.aud != policy.node_party:
        raise Problem("wrong-audience", f"aud is {env.aud}; this node is {policy.node_party}")
    skew = env.iat - now
    if abs(skew) > policy.clock_skew:
        # Refused unless it is a byte-identical copy of a message already accepted: that
        # is answered with the original receipt (decided under the lock; docs/protocol.md).
        stale = Problem(
            "stale",
            f"iat is {abs(int(skew))} s {'ahead of' if skew > 0 else 'behind'} this node's clock; "
            f"the allowed skew is {policy.clock_skew} s",
        )
        return Checked(
            raw, digest, facts, env, partner, None, None, stale_problem=stale, validated=False
        )
    check_agreement(
        policy.registry.agreements,
        agreement_id=env.agreement,
        iss=env.iss,
        aud=env.aud,
        msg_type=env.type,
        purpose=env.purpose,
        on=datetime.fromtimestamp(env.iat, tz=UTC).date(),
    )
    decision = decide(
        partner,
        direction="inbound",
        msg_type=env.type,
        agreement=env.agreement,
        purpose=env.purpose,
    )
    facts.rule = decision.rule_id
    return Checked(raw, digest, facts, env, partner, decision.rule_id, None, validated=False)


@dataclass(frozen=True)
class Stored:
    receipt: bytes
    audit_index: int
    created: bool


@dataclass(frozen=True)
class ReceiptSigner:
    node_party: str
    key: SigningKey
    clock: Callable[[], float]

    def stamp(self) -> tuple[str, int]:
        """A receipt's own message id and `iat`, drawn before the writer's lock is taken
        (the id's random bytes are a system call, which lets the GIL go)."""
        now = self.clock()
        return new_message_id(now), int(now)

    def sign(
        self,
        received: Envelope,
        *,
        digest: str,
        audit_index: int,
        attachments: list[dict[str, Any]] | None = None,
        stamp: tuple[str, int] | None = None,
    ) -> bytes:
        message_id, iat = stamp if stamp is not None else self.stamp()
        receipt = receipt_envelope(
            received=received,
            node_party=self.node_party,
            message_id=message_id,
            iat=iat,
            digest=digest,
            audit_index=audit_index,
            attachments=attachments,
        )
        # Every member is built here from an already validated envelope, so the
        # receipt is serialized without validating it again (this runs under the lock).
        return jws.sign_compact(self.key, jsonstrict.dumps(receipt.to_dict()))


_m = messages.c
# Built once (each batch runs it): the stored messages of one sender among some ids.
_KNOWN_MESSAGES = select(_m.message_id, _m.digest, _m.receipt, _m.audit_index).where(
    _m.sender == bindparam("sender"), _m.message_id.in_(bindparam("ids", expanding=True))
)


def prefetch_existing(conn: Connection, cache: BatchCache, units: Sequence[Unit[Any]]) -> None:
    """Look up which messages of this batch's AcceptUnits are already stored, one query
    per sender (so the (sender, message_id) index is used); each unit then finds its
    answer in `tx.cache.messages` (absent = new)."""
    by_sender: dict[str, set[str]] = {}
    for unit in units:
        if isinstance(unit, AcceptUnit):
            by_sender.setdefault(unit.checked.env.iss, set()).add(unit.checked.env.id)
    for sender, ids in by_sender.items():
        rows = conn.execute(_KNOWN_MESSAGES, {"sender": sender, "ids": sorted(ids)})
        for row in rows:
            cache.messages.load(
                (sender, row.message_id),
                KnownMessage(row.digest, bytes(row.receipt), int(row.audit_index)),
            )
    cache.messages.prefetched = True


@dataclass
class AcceptUnit:
    """Rate limit, schema, uniqueness; then message + audit entry + receipt, atomically.

    Writes go through `tx.defer` after every check, so the unit needs no savepoint.
    """

    checked: Checked
    signer: ReceiptSigner
    needs_savepoint: ClassVar[bool] = False
    message_pk: int | None = field(default=None, init=False)
    # Prepared when the unit is made, in the request's thread: the work of `run` that
    # needs neither the database nor the audit index, so the writer's lock is not held
    # for it.
    # (None: drawn or built under the lock, when a subclass does not prepare them.)
    _stamp: tuple[str, int] | None = field(default=None, init=False)
    _accepted: AuditEvent | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._stamp = self.signer.stamp()
        self._accepted = self._event(None)

    def _event(
        self, attached: list[dict[str, Any]] | None, warnings: list[str] | None = None
    ) -> AuditEvent:
        """The `message.accepted` entry; `warnings`: the paths of the body's warnings when
        they were found at an earlier post (default: this post's validation)."""
        c = self.checked
        paths = [w["path"] for w in c.warnings] if warnings is None else warnings
        detail: dict[str, Any] = {"warnings": paths} if paths else {}
        if attached:
            detail["attachments"] = attached
        return c.facts.event(ev.MESSAGE_ACCEPTED, "accepted", **detail)

    def run(self, tx: Tx) -> Stored:
        self._take_token(tx)
        existing = self._existing(tx)
        if existing is not None:
            return existing
        return self._accept(tx)

    def _existing(self, tx: Tx) -> Stored | None:
        """The answer to bytes received before (200 or 409), after the checks that
        come first; None for a message not yet stored."""
        c = self.checked
        env = c.env
        known = tx.cache.messages
        key = (env.iss, env.id)
        existing = known.get(key)
        if existing is None and not known.prefetched:
            prefetch_existing(tx.conn, tx.cache, [self])
            existing = known.get(key)
        if c.stale_problem is not None and (existing is None or existing[0] != c.digest):
            raise c.stale_problem
        if c.schema_problem is not None:
            raise c.schema_problem
        if existing is None:
            return None
        digest, receipt, index = existing
        if digest != c.digest:
            raise Problem(
                "conflict",
                f"message id {env.id} from {env.iss} was already received with other content",
            )
        tx.audit.append(c.facts.event(ev.MESSAGE_REDELIVERED, "duplicate"))
        return Stored(receipt, index, created=False)

    def _accept(
        self,
        tx: Tx,
        attached: list[dict[str, Any]] | None = None,
        warnings: list[str] | None = None,
    ) -> Stored:
        """Store the message, its audit entry and its receipt; `attached`: the summary
        of its stored attachments (digest, size, media type), committed to by both;
        `warnings`: the warnings' paths found when an unvalidated body was validated."""
        c = self.checked
        env = c.env
        if c.stored is None:  # pragma: no cover - every message that can be stored was sealed
            raise RuntimeError("the body of an accepted message was not prepared for storage")
        if not c.validated and warnings is None:  # pragma: no cover - the caller's duty
            raise RuntimeError("a message whose body was not validated cannot be accepted")
        if attached or warnings is not None or self._accepted is None:
            event = self._event(attached, warnings)
        else:
            event = self._accepted
        index = tx.audit.append(event)
        receipt = self.signer.sign(
            env, digest=c.digest, audit_index=index, attachments=attached, stamp=self._stamp
        )
        pk = defer_message(
            tx,
            env,
            direction="in",
            digest=c.digest,
            body=c.stored,
            status="accepted",
            rule_id=c.rule_id or "",
            audit_index=index,
            receipt=receipt,
        )
        if c.disclosed is not None:
            defer_disclosure(tx, env, c.disclosed, message_pk=pk, direction="in", audit_index=index)
        tx.cache.messages.claim((env.iss, env.id), KnownMessage(c.digest, receipt, index))
        self.message_pk = pk
        return Stored(receipt, index, created=True)

    def _take_token(self, tx: Tx) -> None:
        partner = self.checked.partner
        wait = tx.rates.take(
            partner.party, per_second=partner.rate_per_second, burst=partner.rate_burst
        )
        if wait is not None:
            retry = "3600" if math.isinf(wait) else str(max(1, math.ceil(wait)))
            raise Problem(
                "rate-limited",
                f"{partner.party} is over its rate of {partner.rate_per_second:g} messages/s",
                headers={"Retry-After": retry},
            )

    def refused(self, tx: Tx, problem: Problem) -> None:
        if problem.code != "rate-limited":
            # A refused message still counts against the sender's rate.
            partner = self.checked.partner
            tx.rates.take(
                partner.party, per_second=partner.rate_per_second, burst=partner.rate_burst
            )
        tx.audit.append(self.checked.facts.refusal(problem))
