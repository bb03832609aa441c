"""The sending node under test: a real node (migrated database, group commit) whose
delivery workers post to a `FakePartner` through `httpx.MockTransport`."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from service.clock import FixedClock
from service.db.tables import audit_entries, delivery_attempts, messages, outbox, signed_versions
from service.exchange.delivery import DeliverySettings, DeliveryWorker
from service.exchange.outbound import OutboundRequest, QueueUnit
from service.runtime import Node
from tests.support.batches import prepare_on
from tests.support.nodes import example_body
from tests.unit.exchange.partner import FakePartner

SEED = 20261118
SETTINGS = DeliverySettings(
    concurrency=8,
    max_attempts=10,
    backoff_initial=1.0,
    backoff_max=600.0,
    timeout=5.0,
    lease_seconds=60.0,
    resign_after=150.0,
)


@dataclass
class Sender:
    node: Node
    partner: FakePartner
    clock: FixedClock
    settings: DeliverySettings = SETTINGS
    rand: random.Random = field(default_factory=lambda: random.Random(SEED))

    # -- queueing --------------------------------------------------------------------
    def queue(self, body: dict[str, Any] | None = None, **kw: Any) -> str:
        """Queue a statistics dataset for UZ:MIA (or what `kw` says); return its id."""
        req = OutboundRequest(
            to=kw.get("to", "UZ:MIA"),
            type=kw.get("type", "statistics.migration-flows"),
            agreement=kw.get("agreement", "kz-uz-2019"),
            purpose=kw.get("purpose", "statistics"),
            body=body if body is not None else example_body("statistics.migration-flows"),
            reply_to=kw.get("reply_to"),
        )
        node = self.node
        prepared = prepare_on(node, req)
        queued = node.committer.run_sync(QueueUnit(req, prepared))
        return str(queued.message_id)

    # -- delivering ------------------------------------------------------------------
    def worker(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        node: Node | None = None,
        owner: str = "worker-1",
    ) -> DeliveryWorker:
        node = node or self.node
        return DeliveryWorker(
            engines=node.engines,
            committer=node.committer,
            registry=node.registry,
            key=node.signing_key,
            clock=self.clock,
            settings=self.settings,
            transport=transport,
            owner=owner,
            rand=self.rand,
            bodies=node.bodies,
        )

    def transport(self) -> httpx.AsyncBaseTransport:
        return self.partner.transport

    def deliver(self) -> int:
        """One delivery round of one worker; the number of messages it handled."""

        async def round_() -> int:
            async with self.transport() as transport:
                return await self.worker(transport).run_once()

        return asyncio.run(round_())

    # -- reading the database --------------------------------------------------------
    def pk(self, message_id: str) -> int:
        with self.node.engines.reader.connect() as conn:
            return int(
                conn.execute(
                    select(messages.c.pk).where(
                        messages.c.direction == "out", messages.c.message_id == message_id
                    )
                ).scalar_one()
            )

    def outbox(self, message_id: str) -> dict[str, Any]:
        with self.node.engines.reader.connect() as conn:
            row = (
                conn.execute(
                    select(outbox, messages.c.status, messages.c.receipt, messages.c.digest)
                    .join(messages, messages.c.pk == outbox.c.message_pk)
                    .where(outbox.c.message_pk == self.pk(message_id))
                )
                .mappings()
                .one()
            )
        return dict(row)

    def attempts(self, message_id: str) -> list[dict[str, Any]]:
        with self.node.engines.reader.connect() as conn:
            rows = conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.message_pk == self.pk(message_id))
                .order_by(delivery_attempts.c.pk)
            ).mappings()
            return [dict(r) for r in rows]

    def copies(self, message_id: str) -> list[dict[str, Any]]:
        with self.node.engines.reader.connect() as conn:
            rows = conn.execute(
                select(signed_versions)
                .where(signed_versions.c.message_pk == self.pk(message_id))
                .order_by(signed_versions.c.version)
            ).mappings()
            return [{**r, "jws": bytes(r["jws"])} for r in rows]

    def audit(self, event: str, message_id: str) -> list[dict[str, Any]]:
        with self.node.engines.reader.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.leaf_data)
                .where(audit_entries.c.event == event, audit_entries.c.message_id == message_id)
                .order_by(audit_entries.c.idx)
            ).scalars()
            return [json.loads(bytes(r)) for r in rows]

    def attempt_outcomes(self, message_id: str) -> list[str]:
        """The outcome of each `delivery.attempt` audit entry of a message, in order."""
        return [e["outcome"] for e in self.audit("delivery.attempt", message_id)]
