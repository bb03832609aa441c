"""Protocol v1.1 delivery proofs as a task beside the delivery worker (in the lifespan).

Each round offers the newest checkpoint that meets this node's witness policy to the
v1.1 partners (`outflow.ProofSender`) and verifies the proofs partners sent
(`intake.ProofIntake`). Nothing runs without a partner whose configuration has a
`delivery_proofs` section.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from service.exchange.outbound import prepare
from service.runtime import Node
from service.witness.intake import ProofIntake, ensure_cursor
from service.witness.outflow import ProofSender, ensure_sent_rows
from service.witness.partnerproofs import PartnerProofs, load_partner_proofs
from service.witness.status import newest_met, with_cosignatures

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 0.5


class DeliveryProofs:
    """Both sides of protocol v1.1 for one node."""

    def __init__(
        self,
        node: Node,
        partners: Mapping[str, PartnerProofs] | None = None,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.node = node
        self.interval = interval
        self.partners = load_partner_proofs(node.config) if partners is None else partners
        self.sender = ProofSender(
            reader=node.engines.reader,
            committer=node.committer,
            partners=self.partners,
            prepare=lambda req: prepare(req, node.outbound, node.clock()),
            party=node.party,
        )
        self.intake = ProofIntake(
            node=node.party,
            reader=node.engines.reader,
            committer=node.committer,
            partners=self.partners,
            bodies=node.bodies,
        )
        self.offered = 0

    async def run_once(self) -> tuple[int, int]:
        """One round: (proofs messages queued, proofs messages received and checked)."""
        queued = 0
        note = await asyncio.to_thread(self._witnessed)
        if note is not None:
            size = int(note.split("\n", 2)[1])
            if size > self.offered:
                queued = await self.sender.offer(note)
                self.offered = size
                if queued and self.node.delivery is not None:
                    self.node.delivery.wake()
        checked = await self.intake.run_once()
        return queued, checked

    def _witnessed(self) -> str | None:
        if self.node.witnessing is None:
            return None
        with self.node.engines.reader.connect() as conn:
            found = newest_met(conn, self.node.witnessing)
        return None if found is None else with_cosignatures(*found)

    def ensure_rows(self) -> None:
        """The rows the units lock: the intake's cursor, each partner's sent size."""
        with self.node.engines.writer.connect() as conn, conn.begin():
            ensure_cursor(conn)
            ensure_sent_rows(conn, self.partners, self.node.clock())

    async def run_forever(self, stopping: asyncio.Event) -> None:
        await asyncio.to_thread(self.ensure_rows)
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # a round that fails is retried; exchange goes on
                log.exception("delivery proofs round failed")
            try:
                await asyncio.wait_for(stopping.wait(), self.interval)
            except TimeoutError:
                pass


def proofs_task(
    node: Node, partners: Mapping[str, PartnerProofs], stopping: asyncio.Event
) -> asyncio.Task[None] | None:
    """The delivery-proofs task; None when no partner speaks protocol v1.1."""
    proofs = DeliveryProofs(node, partners)
    if not proofs.partners:
        return None
    return asyncio.create_task(proofs.run_forever(stopping), name="migex-delivery-proofs")
