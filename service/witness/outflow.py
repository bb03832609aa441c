"""As a receiver: send each v1.1 partner the proofs of the messages this node logged.

When a checkpoint of this node's log meets its witness policy, every partner that
speaks protocol v1.1 gets, through the ordinary outbox, one `audit.inclusion-proofs`
message per 256 of its `message.accepted` entries that the checkpoint covers beyond
the last checkpoint whose proofs it was sent, with the consistency proof from that
one (docs/protocol.md, "Protocol v1.1: delivery proofs"). The messages and the new
size are written in one transaction, which first checks that no other process sent
them already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.audit import store
from service.audit.checkpoint import parse_checkpoint_text
from service.audit.entries import MESSAGE_ACCEPTED
from service.audit.note import split_note
from service.db.tables import audit_entries, proofs_sent
from service.exchange.outbound import OutboundRequest, Prepared, QueueUnit, refusal_event
from service.ledger.committer import AuditOnly, GroupCommitter, Tx
from service.protocol.b64 import b64_encode
from service.protocol.problems import Problem
from service.records.inclusion_proofs import MAX_PROOFS
from service.witness.partnerproofs import PROOFS_PURPOSE, PROOFS_TYPE, PartnerProofs

log = logging.getLogger(__name__)

Prepare = Callable[[OutboundRequest], Prepared]
"""Check, sign and prepare one outbound request (service.exchange.outbound.prepare, bound)."""


@dataclass(frozen=True)
class Entry:
    index: int
    message_id: str
    leaf_data: bytes


def sent_size(conn: Connection, party: str, *, lock: bool = False) -> int:
    query = select(proofs_sent.c.size).where(proofs_sent.c.party == party)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return 0 if row is None else int(row.size)


def ensure_sent_rows(conn: Connection, parties: Iterable[str], now: float) -> None:
    """Create each partner's sent-size row at 0 (outside the group commit; races are harmless)."""
    for party in parties:
        if conn.execute(select(proofs_sent.c.party).where(proofs_sent.c.party == party)).first():
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(proofs_sent).values(party=party, size=0, sent_at=now))
        except IntegrityError:
            pass  # another process created it


def accepted_entries(conn: Connection, party: str, start: int, end: int) -> list[Entry]:
    """The partner's `message.accepted` entries with index in [start, end), in order.

    Its proofs messages are left out: proving their receipt would be answered by a
    proof of that proof's receipt, and so on, for ever.
    """
    a = audit_entries.c
    rows = conn.execute(
        select(a.idx, a.message_id, a.leaf_data)
        .where(
            a.event == MESSAGE_ACCEPTED,
            a.party == party,
            a.type != PROOFS_TYPE,
            a.idx >= start,
            a.idx < end,
        )
        .order_by(a.idx)
    )
    return [Entry(int(r.idx), r.message_id, bytes(r.leaf_data)) for r in rows]


def proof_bodies(
    conn: Connection, note: str, previous: int, entries: list[Entry]
) -> list[dict[str, Any]]:
    """The bodies of `audit.inclusion-proofs` for ``entries`` under the checkpoint ``note``."""
    size = parse_checkpoint_text(split_note(note)[0]).size
    consistency = (
        [b64_encode(h) for h in store.consistency_proof(conn, previous, size)]
        if 0 < previous < size
        else []
    )
    bodies = []
    for start in range(0, len(entries), MAX_PROOFS):
        chunk = entries[start : start + MAX_PROOFS]
        bodies.append(
            {
                "checkpoint": note,
                "previous_size": previous,
                "consistency": consistency,
                "proofs": [
                    {
                        "index": e.index,
                        "message_id": e.message_id,
                        "leaf_data": b64_encode(e.leaf_data),
                        "path": [b64_encode(h) for h in store.inclusion_proof(conn, e.index, size)],
                    }
                    for e in chunk
                ],
            }
        )
    return bodies


@dataclass
class QueueProofsUnit:
    """Queue a partner's proofs messages and advance its sent size, if still at ``previous``."""

    party: str
    previous: int
    size: int
    units: list[QueueUnit]
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> bool:
        # The partner's row (`ensure_sent_rows`) is locked: another process offering the
        # same checkpoint waits here, then finds the size moved on.
        if sent_size(tx.conn, self.party, lock=True) != self.previous:
            return False
        for unit in self.units:
            unit.run(tx)
        tx.conn.execute(
            update(proofs_sent)
            .where(proofs_sent.c.party == self.party)
            .values(size=self.size, sent_at=tx.now)
        )
        return True

    def refused(self, tx: Tx, problem: Problem) -> None:  # pragma: no cover - never refuses
        """Queueing prepared messages refuses nothing."""


class ProofSender:
    """Offers each witnessed checkpoint to the v1.1 partners."""

    def __init__(
        self,
        *,
        reader: Any,
        committer: GroupCommitter,
        partners: Mapping[str, PartnerProofs],
        prepare: Prepare,
        party: str,
    ) -> None:
        self.reader = reader
        self.committer = committer
        self.partners = partners
        self.prepare = prepare
        self.party = party

    async def offer(self, note: str) -> int:
        """Queue proofs under ``note``, a checkpoint meeting this node's policy; messages queued."""
        size = parse_checkpoint_text(split_note(note)[0]).size
        queued = 0
        for party, partner in sorted(self.partners.items()):
            queued += await self._offer_one(party, partner, note, size)
        return queued

    def _collect(self, party: str, note: str, size: int) -> tuple[int, list[dict[str, Any]]]:
        with self.reader.connect() as conn:
            previous = sent_size(conn, party)
            if size <= previous:
                return previous, []
            entries = accepted_entries(conn, party, previous, size)
            return previous, proof_bodies(conn, note, previous, entries)

    async def _offer_one(self, party: str, partner: PartnerProofs, note: str, size: int) -> int:
        previous, bodies = await asyncio.to_thread(self._collect, party, note, size)
        if size <= previous:
            return 0
        units = []
        for body in bodies:
            req = OutboundRequest(party, PROOFS_TYPE, partner.agreement, PROOFS_PURPOSE, body)
            try:
                units.append(QueueUnit(req, self.prepare(req)))
            except Problem as problem:
                # Our own configuration does not allow the proofs (agreement or rule):
                # recorded, and offered again with the next witnessed checkpoint.
                log.warning("delivery proofs to %s refused: %s", party, problem)
                await self.committer.run(AuditOnly([refusal_event(req, self.party, problem)]))
                return 0
        sent = await self.committer.run(QueueProofsUnit(party, previous, size, units))
        return len(units) if sent else 0
