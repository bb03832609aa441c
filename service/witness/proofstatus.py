"""Delivery-proof gauges, read from the database at scrape time (docs/operators.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import SQLAlchemyError

from service.config import NodeConfig
from service.db.engine import Engines
from service.db.tables import audit_entries, delivery_proofs, messages, partner_checkpoints
from service.witness.intake import PROOFS_INCONSISTENT


class ProofsCollector(Collector):
    """Per v1.1 partner: proofs held and awaited, its log's verified size, forks seen."""

    def __init__(self, engines: Engines, config: NodeConfig) -> None:
        self._engines = engines
        self._partners = sorted(p.party for p in config.partners if p.delivery_proofs is not None)

    def collect(self) -> Iterator[Metric]:
        if not self._partners:
            return
        try:
            with self._engines.reader.connect() as conn:
                families = self._read(conn)
        except SQLAlchemyError:
            return  # migex_database_up already says so
        yield from families

    def _read(self, conn: Connection) -> list[Metric]:
        m = messages.c
        d = delivery_proofs.c
        delivered = _counts(
            conn.execute(
                select(m.recipient, func.count())
                .where(
                    m.direction == "out", m.status == "delivered", m.recipient.in_(self._partners)
                )
                .group_by(m.recipient)
            ).all()
        )
        held = _counts(conn.execute(select(d.receiver, func.count()).group_by(d.receiver)).all())
        pc = partner_checkpoints.c
        sizes = _counts(conn.execute(select(pc.party, pc.size)).all())
        a = audit_entries.c
        forks = _counts(
            conn.execute(
                select(a.party, func.count())
                .where(a.event == PROOFS_INCONSISTENT)
                .group_by(a.party)
            ).all()
        )
        families: list[GaugeMetricFamily] = [
            GaugeMetricFamily(
                "migex_delivery_proofs_held",
                "Delivered messages for which the partner's proof of logging is held.",
                labels=("partner",),
            ),
            GaugeMetricFamily(
                "migex_delivery_proofs_awaited",
                "Delivered messages whose proof of logging has not arrived yet.",
                labels=("partner",),
            ),
            GaugeMetricFamily(
                "migex_partner_log_verified_size",
                "Tree size of the largest cosigned checkpoint of the partner's log verified.",
                labels=("partner",),
            ),
            GaugeMetricFamily(
                "migex_partner_log_forks",
                "Checkpoints of the partner's log seen not to extend one verified before.",
                labels=("partner",),
            ),
        ]
        for party in self._partners:
            have = held.get(party, 0)
            families[0].add_metric([party], have)
            families[1].add_metric([party], max(0, delivered.get(party, 0) - have))
            families[2].add_metric([party], sizes.get(party, 0))
            families[3].add_metric([party], forks.get(party, 0))
        return list(families)


def _counts(rows: Iterable[Any]) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in rows}
