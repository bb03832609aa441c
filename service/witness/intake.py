"""As a sender: verify the delivery proofs partners send, and keep one per message.

A partner that speaks protocol v1.1 sends `audit.inclusion-proofs` messages
(docs/protocol.md, "Protocol v1.1: delivery proofs"). They are accepted like any
message; this intake then checks each one against the partner's pinned checkpoint
key and the witness policy for its log, outside the write lock, and stores every
valid proof with the outbound message it proves, in one transaction with its audit
entries and the intake's cursor. It also keeps the partner's largest verified
checkpoint and checks every later one against it: a checkpoint that is not an
extension of it is a fork of the partner's log, kept as evidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.audit import merkle
from service.audit.entries import AuditEvent
from service.db.tables import delivery_proofs, messages, node_state, partner_checkpoints
from service.ledger.committer import GroupCommitter, Tx
from service.privacy.atrest import PLAINTEXT, Bodies
from service.protocol import envelope, jws
from service.protocol.b64 import b64_decode
from service.protocol.problems import Problem
from service.records.inclusion_proofs import InclusionProofs
from service.witness.partnerproofs import PROOFS_TYPE, PartnerProofs
from service.witness.tlogproof import (
    CosignedCheckpoint,
    TlogProof,
    TlogProofError,
    delivery_record,
    format_proof,
    verify_cosigned_checkpoint,
    verify_entry,
)

log = logging.getLogger(__name__)

PROOFS_STORED = "proofs.stored"
PROOFS_INVALID = "proofs.invalid"
PROOFS_INCONSISTENT = "proofs.inconsistent"
CURSOR_KEY = "proofs.intake.cursor"
BATCH = 16


@dataclass(frozen=True)
class KnownCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class Delivered:
    """What the sender knows of one delivered message: its row, digest, receipt index."""

    pk: int
    digest: str
    receipt_index: int | None


@dataclass
class CheckedBatch:
    """One proofs message, checked: proofs to store, refusals, and the fork verdict."""

    receiver: str
    message_id: str
    message_pk: int
    cosigned: CosignedCheckpoint | None = None
    # (message pk, entry index, tree size, .tlog-proof text)
    stored: list[tuple[int, int, int, str]] = field(default_factory=list)
    invalid: list[tuple[str | None, str]] = field(default_factory=list)  # (message id, reason)
    fork: str | None = None
    extends_known: bool = False
    """Whether the checkpoint was shown to extend (or equal) the known one, or none is known."""


def check_batch(
    body: InclusionProofs,
    *,
    node: str,
    receiver: str,
    partner: PartnerProofs,
    known: KnownCheckpoint | None,
    delivered: Mapping[str, Delivered],
    message_id: str,
    message_pk: int,
) -> CheckedBatch:
    """Verify one proofs body against pinned keys and the policy; pure but for its inputs.

    ``delivered`` maps the message ids the body names to this node's outbound rows to
    ``receiver``; a proof counts only for a delivered message whose accepted copy's
    digest and receipt index are the ones in the receiver's entry.
    """
    batch = CheckedBatch(receiver, message_id, message_pk)
    try:
        cosigned = verify_cosigned_checkpoint(body.checkpoint, partner.policy, partner.log_vkeys)
    except TlogProofError as exc:
        batch.invalid.append((None, f"checkpoint: {exc}"))
        return batch
    batch.cosigned = cosigned
    batch.fork = _fork(known, cosigned, body.previous_size, body.consistency)
    if batch.fork is not None:
        return batch
    batch.extends_known = known is None or (
        body.previous_size == known.size <= cosigned.checkpoint.size
    )
    for item in body.proofs:
        try:
            proven = verify_entry(
                cosigned, item.index, b64_decode(item.leaf_data), _hashes(item.path)
            )
            record = delivery_record(proven)
        except (TlogProofError, ValueError) as exc:
            batch.invalid.append((item.message_id, str(exc)))
            continue
        mine = delivered.get(item.message_id)
        if record.sender != node or record.message_id != item.message_id:
            batch.invalid.append((item.message_id, "the entry records another sender or message"))
        elif mine is None or mine.receipt_index != item.index or mine.digest != record.digest:
            batch.invalid.append(
                (item.message_id, "no delivered message with that digest and receipt index")
            )
        else:
            proof = TlogProof(proven.leaf, item.index, _hashes(item.path), body.checkpoint)
            batch.stored.append((mine.pk, item.index, proven.size, format_proof(proof)))
    return batch


def _hashes(values: Sequence[str]) -> tuple[bytes, ...]:
    return tuple(b64_decode(v) for v in values)


def _fork(
    known: KnownCheckpoint | None, new: CosignedCheckpoint, previous: int, consistency: list[str]
) -> str | None:
    """Why ``new`` cannot extend the partner's known checkpoint, or None."""
    cp = new.checkpoint
    if known is None:
        return None
    if known.size == cp.size:
        return None if known.root == cp.root else f"two roots for tree size {cp.size}"
    if known.size > cp.size or previous != known.size:
        return None  # an older checkpoint, or a proof from another size: nothing to compare
    try:
        merkle.verify_consistency(known.size, cp.size, known.root, cp.root, _hashes(consistency))
    except merkle.ProofError as exc:
        return f"tree size {cp.size} is not an extension of tree size {known.size}: {exc}"
    return None


@dataclass
class StoreProofsUnit:
    """Store a checked batch: proofs, the partner's checkpoint, audit entries, the cursor."""

    batch: CheckedBatch
    known: KnownCheckpoint | None
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> int:
        b = self.batch
        # The cursor row is locked first: another process that checked the same
        # message waits here, then finds it done (the row exists: `ensure_rows`).
        if _cursor(tx.conn, lock=True) >= b.message_pk:
            return 0
        stored = 0
        for pk, index, size, proof in b.stored:
            exists = tx.conn.execute(
                select(delivery_proofs.c.message_pk).where(delivery_proofs.c.message_pk == pk)
            ).first()
            if exists is None:
                tx.conn.execute(
                    insert(delivery_proofs).values(
                        message_pk=pk,
                        receiver=b.receiver,
                        audit_index=index,
                        tree_size=size,
                        proof=proof,
                        proofs_message_pk=b.message_pk,
                        stored_at=tx.now,
                    )
                )
                stored += 1
        self._keep_checkpoint(tx)
        self._audit(tx, stored)
        _set_cursor(tx.conn, b.message_pk)
        return stored

    def _keep_checkpoint(self, tx: Tx) -> None:
        cp = self.batch.cosigned
        if cp is None or not self.batch.extends_known:
            return  # only a checkpoint shown to extend the known one replaces it
        values = {
            "size": cp.checkpoint.size,
            "root": cp.checkpoint.root,
            "note": cp.note,
            "verified_at": tx.now,
        }
        pc = partner_checkpoints.c
        if _known(tx.conn, self.batch.receiver) != self.known:
            return  # changed since the batch was checked: compared against another view
        if self.known is None:
            tx.conn.execute(insert(partner_checkpoints).values(party=self.batch.receiver, **values))
        elif cp.checkpoint.size > self.known.size:
            tx.conn.execute(
                update(partner_checkpoints).where(pc.party == self.batch.receiver).values(**values)
            )

    def _audit(self, tx: Tx, stored: int) -> None:
        b = self.batch
        if b.fork is not None and b.cosigned is not None:
            known = self.known.note if self.known is not None else None
            detail = {
                "reason": b.fork,
                "known_checkpoint": known,
                "new_checkpoint": b.cosigned.note,
            }
            tx.audit.append(self._event(PROOFS_INCONSISTENT, "inconsistent", detail))
            return
        for message_id, reason in b.invalid:
            refused = {"proved_message_id": message_id, "reason": reason[:300]}
            tx.audit.append(self._event(PROOFS_INVALID, "invalid", refused))
        size = b.cosigned.checkpoint.size if b.cosigned is not None else None
        counts = {"stored": stored, "invalid": len(b.invalid), "tree_size": size}
        tx.audit.append(self._event(PROOFS_STORED, "ok", counts))

    def _event(self, name: str, outcome: str, detail: dict[str, Any]) -> AuditEvent:
        """An audit entry about the partner's proofs message being processed."""
        b = self.batch
        return AuditEvent(
            name,
            outcome,
            party=b.receiver,
            sender=b.receiver,
            message_id=b.message_id,
            type=PROOFS_TYPE,
            detail=detail,
        )

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        """Storing checked proofs refuses nothing."""


def _cursor(conn: Connection, *, lock: bool = False) -> int:
    query = select(node_state.c.value).where(node_state.c.key == CURSOR_KEY)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return int(row.value) if row is not None else 0


def _set_cursor(conn: Connection, pk: int) -> None:
    conn.execute(update(node_state).where(node_state.c.key == CURSOR_KEY).values(value=str(pk)))


def ensure_cursor(conn: Connection) -> None:
    """Create the intake's cursor row (outside the group commit; a race is harmless)."""
    if conn.execute(select(node_state.c.key).where(node_state.c.key == CURSOR_KEY)).first():
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(node_state).values(key=CURSOR_KEY, value="0"))
    except IntegrityError:
        pass  # another process created it


def _known(conn: Connection, party: str) -> KnownCheckpoint | None:
    pc = partner_checkpoints.c
    row = conn.execute(select(pc.size, pc.root, pc.note).where(pc.party == party)).first()
    return None if row is None else KnownCheckpoint(int(row.size), bytes(row.root), row.note)


def _delivered(conn: Connection, node: str, receiver: str, ids: list[str]) -> dict[str, Delivered]:
    m = messages.c
    rows = conn.execute(
        select(m.pk, m.message_id, m.digest, m.receipt_audit_index).where(
            m.direction == "out",
            m.sender == node,
            m.recipient == receiver,
            m.message_id.in_(ids),
            m.status == "delivered",
        )
    )
    return {r.message_id: Delivered(int(r.pk), r.digest, r.receipt_audit_index) for r in rows}


def _body(token: bytes) -> dict[str, Any]:
    body = envelope.parse_payload(jws.parse_compact(token).payload).to_dict()["body"]
    if not isinstance(body, dict):
        raise ValueError("the body is not an object")
    return body


class ProofIntake:
    """Processes accepted `audit.inclusion-proofs` messages in order of arrival."""

    def __init__(
        self,
        *,
        node: str,
        reader: Any,
        committer: GroupCommitter,
        partners: Mapping[str, PartnerProofs],
        interval: float = 1.0,
        bodies: Bodies = PLAINTEXT,
    ) -> None:
        self.node = node
        self.reader = reader
        self.bodies = bodies
        self.committer = committer
        self.partners = partners
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the intake must not die; the next round retries
                log.exception("delivery proofs intake failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Check and store every proofs message not yet processed; how many were."""
        done = 0
        while True:
            pending = await asyncio.to_thread(self._pending)
            if not pending:
                return done
            for pk, sender, message_id, token in pending:
                batch, known = await asyncio.to_thread(self._check, pk, sender, message_id, token)
                await self.committer.run(StoreProofsUnit(batch, known))
                done += 1

    def _pending(self) -> list[tuple[int, str, str, bytes | None]]:
        m = messages.c
        with self.reader.connect() as conn:
            after = _cursor(conn)
            rows = conn.execute(
                select(m.pk, m.sender, m.message_id, m.jws, m.kek_id, m.wrapped_key)
                .where(m.direction == "in", m.type == PROOFS_TYPE, m.pk > after)
                .order_by(m.pk)
                .limit(BATCH)
            ).mappings()
            return [
                (
                    int(r["pk"]),
                    r["sender"],
                    r["message_id"],
                    self.bodies.open_message(r, r["sender"], r["message_id"]),
                )
                for r in rows
            ]

    def _check(
        self, pk: int, sender: str, message_id: str, token: bytes | None
    ) -> tuple[CheckedBatch, KnownCheckpoint | None]:
        partner = self.partners.get(sender)
        if partner is None or token is None:
            batch = CheckedBatch(sender, message_id, pk)
            why = "the partner is not configured for delivery proofs" if token else "purged"
            batch.invalid.append((None, why))
            return batch, None
        try:
            body = InclusionProofs.model_validate(_body(token))
        except (ValidationError, ValueError, Problem) as exc:
            batch = CheckedBatch(sender, message_id, pk)
            batch.invalid.append((None, f"body: {exc}"[:300]))
            return batch, None
        with self.reader.connect() as conn:
            known = _known(conn, sender)
            delivered = _delivered(conn, self.node, sender, [p.message_id for p in body.proofs])
        batch = check_batch(
            body,
            node=self.node,
            receiver=sender,
            partner=partner,
            known=known,
            delivered=delivered,
            message_id=message_id,
            message_pk=pk,
        )
        return batch, known


def proof_state(conn: Connection, message_pk: int) -> dict[str, Any] | None:
    """The delivery proof held for an outbound message, for its status (None if none)."""
    d = delivery_proofs.c
    row = conn.execute(
        select(d.audit_index, d.tree_size, d.stored_at).where(d.message_pk == message_pk)
    ).first()
    if row is None:
        return None
    return {"index": row.audit_index, "tree_size": row.tree_size, "stored_at": row.stored_at}


def proof_text(conn: Connection, node: str, message_id: str) -> str | None:
    """The `.tlog-proof` held for an outbound message of this node, None if none yet."""
    m = messages.c
    row = conn.execute(
        select(delivery_proofs.c.proof)
        .join(messages, m.pk == delivery_proofs.c.message_pk)
        .where(m.direction == "out", m.sender == node, m.message_id == message_id)
    ).first()
    return None if row is None else str(row.proof)
