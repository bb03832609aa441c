"""An inbound message with attachments (docs/protocol.md, 'Attachments (v1.1)', 'The
transfer'): verified like any other, then held as *awaiting attachments* until every
file it names is in the store, and accepted only then, when the same bytes are posted
again.

`AwaitingUnit` runs inside the group commit: the rate limit, then the answer to bytes
already accepted (200 or 409), the partner's limits on the declared files, and then
either the pending row (created at the first post: 202 and an upload token) or the
acceptance (message, attachment rows, audit entry and receipt in one commit). Every
check comes before the unit's first write, so it needs no savepoint.

The completion post (step 5) that carries the message's upload token is taken without
validating its body again when the pending row holds exactly these bytes: they were
validated when first posted, and the row keeps the paths of their warnings for the
`message.accepted` entry. Any other post is validated first.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, delete, select, update

from service.attachments.limits import Declared, check_declared, declared_in, summary, upload_key
from service.attachments.rows import defer_attachments
from service.attachments.store import AttachmentStore
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import pending_messages
from service.exchange.inbound import AcceptUnit, Stored
from service.ledger.committer import Tx
from service.privacy.atrest import PLAINTEXT, Bodies
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.problems import Problem


@dataclass(frozen=True)
class Awaiting:
    """The message waits for its files: the upload token and what it declared."""

    upload_token: str
    declared: list[Declared]


@dataclass(frozen=True)
class Pending:
    """A pending row, as the upload endpoints read it."""

    digest: str
    upload_token: str
    declared: list[Declared]
    expires_at: float
    jws: bytes

    def envelope(self) -> Envelope:
        """The message's envelope (its signature was verified when it was posted)."""
        return envelope.parse_payload(jws.parse_compact(self.jws).payload)


_p = pending_messages.c
# Built once (each upload request and each post naming attachments runs them).
_PENDING = select(pending_messages).where(
    _p.sender == bindparam("sender"), _p.message_id == bindparam("message_id")
)
_DELETE_PENDING = delete(pending_messages).where(
    _p.sender == bindparam("sender"), _p.message_id == bindparam("message_id")
)
_INSERT_PENDING = pending_messages.insert()


def pending_row(conn: Connection, sender: str, message_id: str) -> Any:
    """The pending row of (sender, message id), expired or not; None if there is none."""
    return conn.execute(_PENDING, {"sender": sender, "message_id": message_id}).first()


def read_pending(row: Any, bodies: Bodies) -> Pending:
    """The pending row's values, its message opened if it is sealed (BodyUnreadable if
    it does not open)."""
    items = [Declared.from_dict(d) for d in json.loads(row.attachments)]
    raw = bodies.open_pending(row._mapping, row.sender, row.message_id)
    return Pending(row.digest, row.upload_token, items, float(row.expires_at), raw)


def window_closed(row: Any, now: float) -> bool:
    """Whether the upload window of a pending row has closed (expired or not yet)."""
    return row.expired_at is not None or bool(row.expires_at < now)


def incomplete(sender: str, message_id: str) -> Problem:
    return Problem(
        "attachment-incomplete",
        f"the upload window of message {message_id} from {sender} closed before every "
        "attachment was stored; sign the message again with a new id",
    )


@dataclass(frozen=True)
class Unvalidated:
    """The unvalidated completion post is not one: no pending row holds these bytes
    under the token it came with. Nothing was done; validate the body and run again."""


UNVALIDATED = Unvalidated()


def upload_token_matches(given: str | None, held: str) -> bool:
    """Whether a request's bearer token is the pending message's upload token (compared
    in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), held.encode())


def _completing(row: Any, digest: str, token: str | None) -> list[str] | None:
    """The paths of the warnings found when the bytes of `row` were first posted, if a
    post of bytes with `digest` and upload `token` completes it; None if it does not
    (another message, other bytes or token, or a row made before warnings were kept)."""
    if row is None or row.digest != digest or row.warnings is None:
        return None
    if not upload_token_matches(token, str(row.upload_token)):
        return None
    paths: list[str] = json.loads(row.warnings)
    return paths


@dataclass
class AwaitingUnit(AcceptUnit):
    store: AttachmentStore | None = None
    # How the pending message is stored: sealed under the node's KEK, or as it is.
    bodies: Bodies = PLAINTEXT
    upload_window: float = 86_400.0
    # The message is outside the clock skew: refused unless it awaits its files.
    stale: Problem | None = None
    # The upload token the post came with (a completion post, docs/protocol.md, 'The
    # transfer', step 5): an unvalidated `checked` is taken only with the right one.
    token: str | None = None
    needs_savepoint: ClassVar[bool] = False

    def __post_init__(self) -> None:
        """The receipt's stamp is drawn before the lock for a completion post only (one
        with the token): a first post is answered 202 without a receipt, and one without
        the token that turns out to complete its message draws it under the lock. The
        accepted entry always lists the files, so it is built at acceptance."""
        if self.token is not None:
            self._stamp = self.signer.stamp()

    def run(self, tx: Tx) -> Stored | Awaiting | Unvalidated:  # type: ignore[override]
        c = self.checked
        row: Any = None
        warnings: list[str] | None = None
        if not c.validated:
            # Decided before anything else, so that "validate and run again" leaves no
            # trace (no token taken): the run that counts is the next one.
            row = pending_row(tx.conn, c.env.iss, c.env.id)
            warnings = _completing(row, c.digest, self.token)
            if warnings is None:
                return UNVALIDATED
        self._take_token(tx)
        existing = self._existing(tx)
        if existing is not None:
            return existing
        declared = declared_in(c.env.body)
        check_declared(c.partner.party, c.partner.attachments, declared)
        if c.validated:
            row = pending_row(tx.conn, c.env.iss, c.env.id)
        if row is None:
            if self.stale is not None:
                raise self.stale
            return self._await(tx, declared)
        if row.digest != c.digest:
            raise Problem(
                "conflict",
                f"message id {c.env.id} from {c.env.iss} awaits attachments with other content",
            )
        if window_closed(row, tx.now):
            raise incomplete(c.env.iss, c.env.id)
        if self.store is None:
            raise RuntimeError("an AwaitingUnit needs the attachment store")
        if not all(self.store.exists(d.digest) for d in declared):
            return Awaiting(row.upload_token, declared)
        stored = self._accept(tx, summary(declared), warnings)
        defer_attachments(tx, self.message_pk or 0, declared)
        # The unit's one immediate write, after every check: nothing to undo on a refusal.
        tx.conn.execute(_DELETE_PENDING, {"sender": c.env.iss, "message_id": c.env.id})
        return stored

    def _await(self, tx: Tx, declared: list[Declared]) -> Awaiting:
        c = self.checked
        token = secrets.token_urlsafe(32)
        tx.audit.append(
            c.facts.event(
                ev.MESSAGE_AWAITING, "awaiting-attachments", attachments=summary(declared)
            )
        )
        # Written at once (not deferred), so that a later unit of the batch posting the
        # same message finds it; the unit's last step, after every check.
        tx.conn.execute(
            _INSERT_PENDING,
            {
                "sender": c.env.iss,
                "message_id": c.env.id,
                "digest": c.digest,
                **self.bodies.pending(c.raw, c.env.iss, c.env.id),
                "upload_token": token,
                "attachments": json.dumps([d.as_dict() for d in declared]),
                "warnings": json.dumps([w["path"] for w in c.warnings]),
                "created_at": tx.now,
                "expires_at": tx.now + self.upload_window,
                "expired_at": None,
            },
        )
        return Awaiting(token, declared)


@dataclass
class StoredThenAccepted:
    """The upload that stored a message's last missing file, asked for the receipt
    (`Prefer: return=representation`, docs/protocol.md, 'The transfer', step 4): its
    `attachment.stored` entry and the message's acceptance in one commit. The entry is
    written whatever the acceptance's outcome; a refusal of the message is not (the
    upload answers without a receipt, and the sender's completion post gets the answer
    and leaves its trace)."""

    stored: AuditEvent
    accept: AwaitingUnit
    needs_savepoint: ClassVar[bool] = False

    def run(self, tx: Tx) -> Stored | Awaiting | Unvalidated:
        tx.audit.append(self.stored)
        return self.accept.run(tx)

    def refused(self, tx: Tx, problem: Problem) -> None:
        tx.audit.append(self.stored)


@dataclass
class ExpireUnit:
    """Expire the messages whose upload window closed before every file was stored:
    each expiry is audited as a refusal (`attachment-incomplete`) and the row kept
    (marked `expired_at`, its body, files list and warnings dropped), so later posts and
    uploads are refused; the staging keys of their files are returned, to be discarded
    once this commits. The rows read are those of `ix_pending_open`."""

    now: float
    bodies: Bodies = PLAINTEXT
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> list[str]:
        p = pending_messages.c
        rows = tx.conn.execute(
            select(pending_messages).where(p.expires_at < self.now, p.expired_at.is_(None))
        ).all()
        keys: list[str] = []
        for row in rows:
            pending = read_pending(row, self.bodies)
            env = pending.envelope()
            problem = incomplete(env.iss, env.id)
            tx.audit.append(
                AuditEvent(
                    ev.MESSAGE_REFUSED,
                    "refused",
                    party=env.iss,
                    sender=env.iss,
                    recipient=env.aud,
                    message_id=env.id,
                    type=env.type,
                    agreement=env.agreement,
                    purpose=env.purpose,
                    code=problem.code,
                    digest=pending.digest,
                    detail={"status": problem.status, "attachments": summary(pending.declared)},
                )
            )
            keys.extend(upload_key(env.iss, env.id, d.digest) for d in pending.declared)
            # The body (personal data) goes with the window: the row keeps only what
            # refuses later posts and uploads of these bytes (410).
            tx.conn.execute(
                update(pending_messages)
                .where(p.sender == row.sender, p.message_id == row.message_id)
                .values(
                    expired_at=self.now,
                    jws=None,
                    kek_id=None,
                    wrapped_key=None,
                    attachments="[]",
                    warnings=None,
                )
            )
        return keys

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing expired; the next run tries again."""
