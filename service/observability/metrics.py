"""Prometheus metrics of the node.

Exchange counters are derived from the audit entries each group commit makes durable
(`ExchangeMetrics.observe_commit` is the committer's `on_commit` observer), so the
metrics count exactly what the audit log records. Request latency is observed by the
request middleware. Outbox and audit log gauges are read from the database at scrape
time (`DatabaseCollector`), so every process reports the same values.

Labels hold only party ids, message types, outcomes, problem codes, route templates,
methods and statuses; each is bounded to a known set so that no request can create a
series of its own, and no label ever carries personal data.

With several processes (`migex serve --workers N`), set `PROMETHEUS_MULTIPROC_DIR` to
an empty directory before the server starts: the counters and histograms of all
processes are then written there and summed at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from service.audit import entries as ev
from service.audit import store
from service.db.engine import Engines
from service.db.tables import messages, outbox
from service.protocol.problems import KINDS
from service.records.registry import MESSAGE_TYPES

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# Label values used when the real value is missing or outside the known set.
UNAUTHENTICATED: Final = "unauthenticated"
UNKNOWN: Final = "unknown"
OTHER: Final = "other"
UNMATCHED_ROUTE: Final = "unmatched"

HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Audit event -> outcome label of the inbound and outbound message counters.
_INBOUND: Final = {
    ev.MESSAGE_ACCEPTED: "accepted",
    ev.MESSAGE_REDELIVERED: "duplicate",
    ev.MESSAGE_REFUSED: "refused",
}
_OUTBOUND: Final = {ev.MESSAGE_QUEUED: "queued", ev.SEND_REFUSED: "refused"}
_DELIVERY_OUTCOMES: Final = frozenset({"delivered", "retry", "refused", "failed"})


class ExchangeMetrics:
    """The node's counters and latency histogram, in a registry of its own."""

    def __init__(self, partners: Iterable[str] = ()) -> None:
        # No `_created` series: they double the series count and say nothing useful here.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.partners = frozenset(partners)
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "migex_messages_in",
            "Messages received from partners, by outcome (accepted, duplicate, refused).",
            ("partner", "type", "outcome"),
            registry=r,
        )
        self.messages_out = Counter(
            "migex_messages_out",
            "Messages the agency's systems handed to this node, by outcome (queued, refused).",
            ("partner", "type", "outcome"),
            registry=r,
        )
        self.inbound_refusals = Counter(
            "migex_inbound_refusals",
            "Messages from partners refused, by problem code.",
            ("partner", "code"),
            registry=r,
        )
        self.outbound_refusals = Counter(
            "migex_outbound_refusals",
            "Messages to partners refused by this node's own checks, by problem code.",
            ("partner", "code"),
            registry=r,
        )
        self.delivery_attempts = Counter(
            "migex_delivery_attempts",
            "Delivery attempts to partners, by outcome (delivered, retry, refused, failed).",
            ("partner", "outcome"),
            registry=r,
        )
        self.request_duration = Histogram(
            "migex_http_request_duration_seconds",
            "Time from receiving a request to sending its response, by route template.",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    # -- labels ------------------------------------------------------------------
    def _partner(self, party: object, missing: str = UNKNOWN) -> str:
        if party is None:
            return missing
        return party if isinstance(party, str) and party in self.partners else OTHER

    @staticmethod
    def _type(msg_type: object) -> str:
        if msg_type is None:
            return UNKNOWN
        return msg_type if isinstance(msg_type, str) and msg_type in MESSAGE_TYPES else OTHER

    @staticmethod
    def _code(code: object) -> str:
        return code if isinstance(code, str) and code in KINDS else OTHER

    # -- observers -----------------------------------------------------------------
    def observe_commit(self, entries: list[dict[str, Any]]) -> None:
        """Count the exchange events of one committed batch (the committer's observer)."""
        for entry in entries:
            self._count(entry)

    def _count(self, entry: Mapping[str, Any]) -> None:
        event = entry["event"]
        if event in _INBOUND:
            partner = self._partner(entry["party"], UNAUTHENTICATED)
            self.messages_in.labels(partner, self._type(entry["type"]), _INBOUND[event]).inc()
            if event == ev.MESSAGE_REFUSED:
                self.inbound_refusals.labels(partner, self._code(entry["code"])).inc()
        elif event in _OUTBOUND:
            partner = self._partner(entry["party"])
            self.messages_out.labels(partner, self._type(entry["type"]), _OUTBOUND[event]).inc()
            if event == ev.SEND_REFUSED:
                self.outbound_refusals.labels(partner, self._code(entry["code"])).inc()
        elif event == ev.DELIVERY_ATTEMPT:
            outcome = entry["outcome"] if entry["outcome"] in _DELIVERY_OUTCOMES else OTHER
            self.delivery_attempts.labels(self._partner(entry["party"]), outcome).inc()

    def observe_unlogged_refusal(self, code: str) -> None:
        """Count a refusal of an unproven sender that was counted, not logged, because
        its source was over its rate (service.exchange.refusals)."""
        self._count({"event": ev.MESSAGE_REFUSED, "party": None, "type": None, "code": code})

    def observe_request(self, route: str | None, method: str, status: int, seconds: float) -> None:
        self.request_duration.labels(
            route or UNMATCHED_ROUTE,
            method if method in HTTP_METHODS else OTHER,
            str(status),
        ).observe(seconds)

    # -- exposition ----------------------------------------------------------------
    def exposition(self, *extra: Collector) -> bytes:
        """The text exposition of this node's metrics and of `extra` collectors."""
        registry = CollectorRegistry(auto_describe=False)
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            # Every process's counters and histograms, summed from their files.
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self.registry))
        for collector in extra:
            registry.register(collector)
        data: bytes = generate_latest(registry)
        return data


class _Forward(Collector):
    """Another registry's metrics, for one scrape."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: outbox and audit log state."""

    def __init__(self, engines: Engines, clock: Callable[[], float]) -> None:
        self._engines = engines
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "migex_database_up", "1 if the database answered this scrape, 0 if not."
        )
        try:
            families = self._read()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = self._clock()
        o, m = outbox.c, messages.c
        with self._engines.reader.connect() as conn:
            rows = conn.execute(
                select(o.state, m.recipient, func.count(), func.min(o.created_at))
                .join(messages, m.pk == o.message_pk)
                .where(o.state.in_(("pending", "failed")))
                .group_by(o.state, m.recipient)
            ).all()
            head = store.read_head(conn)
        pending = GaugeMetricFamily(
            "migex_outbox_pending",
            "Messages in the outbox waiting for delivery, by partner.",
            labels=("partner",),
        )
        oldest = GaugeMetricFamily(
            "migex_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for delivery, by partner.",
            labels=("partner",),
        )
        failed = GaugeMetricFamily(
            "migex_outbox_failed",
            "Messages whose delivery failed or was refused, waiting for an operator, by partner.",
            labels=("partner",),
        )
        for state, partner, count, first in sorted(rows, key=lambda r: (r[0], r[1])):
            if state == "pending":
                pending.add_metric([partner], float(count))
                oldest.add_metric([partner], max(0.0, now - float(first)))
            else:
                failed.add_metric([partner], float(count))
        size = GaugeMetricFamily("migex_audit_log_entries", "Entries in the audit log.")
        size.add_metric([], float(head.size))
        signed = GaugeMetricFamily(
            "migex_audit_checkpoint_size", "Tree size of the latest signed checkpoint."
        )
        signed.add_metric([], float(head.checkpoint_size))
        age = GaugeMetricFamily(
            "migex_audit_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint (absent before the first one).",
        )
        if head.checkpoint_size > 0:
            age.add_metric([], max(0.0, now - head.checkpoint_at))
        return [pending, oldest, failed, size, signed, age]
