"""A flood of refusals from one source: a logging rate, then counted aggregates.

Deterministic: the clock is injected and moved by the tests; flushes are called
directly (the node's own tick calls the same function). SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from service.audit import entries as ev
from service.clock import FixedClock, rfc3339
from service.config import load_config
from service.db.tables import audit_entries, node_state, rate_buckets
from service.exchange import refusals
from service.exchange.inbound import Facts
from service.exchange.refusals import (
    UNKNOWN_SOURCE,
    RefusalUnit,
    source_digest,
)
from service.main import create_app
from service.protocol.problems import Problem
from service.runtime import Node, build_node
from tests.support.nodes import NOW, Federation, envelope_for

JOSE = {"Content-Type": "application/jose"}
LIMITS = {"per_second": 0.01, "burst": 3, "aggregate_seconds": 60}
SOURCE = source_digest(UNKNOWN_SOURCE)


def _limited(cfg: dict[str, Any]) -> None:
    cfg["refusals"] = dict(LIMITS)


@pytest.fixture
def flooded(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(_limited)


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _entries(node: Node, event: str | None = None) -> list[dict[str, Any]]:
    with node.engines.reader.connect() as conn:
        leaves = conn.execute(select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx))
        entries = [json.loads(bytes(leaf)) for leaf in leaves.scalars()]
    return [e for e in entries if event is None or e["event"] == event]


def _rows(node: Node, column: Any, prefix: str) -> int:
    with node.engines.reader.connect() as conn:
        count = conn.execute(select(func.count()).where(column.startswith(prefix))).scalar_one()
    return int(count)


def _garbage(client: TestClient, count: int, **headers: str) -> None:
    for _ in range(count):
        resp = client.post("/v1/messages", content=b"garbage", headers=JOSE | headers)
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "malformed"


def _flush(node: Node, *, final: bool = False) -> int:
    return refusals.flush_due(
        node.committer,
        node.engines.reader,
        clock=node.clock,
        limits=node.refusal_limits,
        final=final,
    )


def test_refusals_past_the_burst_are_answered_but_not_logged_one_by_one(
    flooded: TestClient,
) -> None:
    node = _node(flooded)
    before = len(_entries(node))
    _garbage(flooded, 10)
    refused = _entries(node, ev.MESSAGE_REFUSED)
    assert len(refused) == 3
    assert all(e["detail"]["source"] == SOURCE for e in refused)
    assert len(_entries(node)) == before + 3
    assert _entries(node, ev.MESSAGE_REFUSED_AGGREGATE) == []


def test_the_next_refusal_after_the_interval_writes_the_aggregate(
    flooded: TestClient, clock: FixedClock
) -> None:
    node = _node(flooded)
    _garbage(flooded, 10)
    clock.advance(61)  # 0.61 tokens: still over the limit
    _garbage(flooded, 1)
    (aggregate,) = _entries(node, ev.MESSAGE_REFUSED_AGGREGATE)
    assert aggregate["outcome"] == "refused"
    assert aggregate["detail"] == {
        "source": SOURCE,
        "count": 7,
        "codes": {"malformed": 7},
        "since": rfc3339(NOW),
        "until": rfc3339(NOW + 60),
    }
    assert aggregate["party"] is aggregate["code"] is aggregate["message_id"] is None
    clock.advance(60)
    assert _flush(node) == 1
    second = _entries(node, ev.MESSAGE_REFUSED_AGGREGATE)[1]
    assert second["detail"]["count"] == 1
    assert second["detail"]["since"] == rfc3339(NOW + 61)


def test_a_flood_that_stopped_is_written_by_the_tick_once(
    flooded: TestClient, clock: FixedClock
) -> None:
    node = _node(flooded)
    _garbage(flooded, 10)
    assert _flush(node) == 0  # the interval is not over
    clock.advance(60)
    assert _flush(node) == 1
    assert _flush(node) == 0
    (aggregate,) = _entries(node, ev.MESSAGE_REFUSED_AGGREGATE)
    assert aggregate["detail"]["count"] == 7
    assert _rows(node, node_state.c.key, refusals.TALLY_PREFIX) == 0


def test_stopping_the_node_writes_every_open_tally(
    federation: Federation, clock: FixedClock
) -> None:
    federation.mutate = _limited
    config = load_config(federation.write_config())
    with TestClient(create_app(config, clock=clock), raise_server_exceptions=False) as client:
        node = _node(client)
        _garbage(client, 10)
        assert _entries(node, ev.MESSAGE_REFUSED_AGGREGATE) == []
    engine = create_engine(federation.database_url)
    try:
        with engine.connect() as conn:
            leaves = [
                json.loads(bytes(v))
                for v in conn.execute(select(audit_entries.c.leaf_data)).scalars()
            ]
    finally:
        engine.dispose()
    (aggregate,) = [e for e in leaves if e["event"] == ev.MESSAGE_REFUSED_AGGREGATE]
    assert aggregate["detail"]["count"] == 7
    assert aggregate["detail"]["until"] == rfc3339(NOW)


def test_a_partner_behind_the_flooding_address_is_still_served(
    flooded: TestClient, federation: Federation
) -> None:
    _garbage(flooded, 20)
    token = federation.uz.sign(envelope_for(federation.uz))
    assert flooded.post("/v1/messages", content=token, headers=JOSE).status_code == 201


def test_refusals_after_the_signature_verified_are_each_logged(
    flooded: TestClient, federation: Federation
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz, aud="TJ:MIA"))
    for _ in range(6):
        assert flooded.post("/v1/messages", content=token, headers=JOSE).status_code == 422
    refused = _entries(_node(flooded), ev.MESSAGE_REFUSED)
    assert [e["code"] for e in refused] == ["wrong-audience"] * 6
    assert all("source" not in e["detail"] for e in refused)


def test_the_codes_of_unlogged_refusals_are_counted(flooded: TestClient, clock: FixedClock) -> None:
    _garbage(flooded, 4)
    flooded.post("/v1/messages", content=b"x" * 10, headers={"Content-Type": "text/plain"})
    flooded.post("/v1/messages", content=b"a.b.c", headers=JOSE)
    clock.advance(60)
    assert _flush(_node(flooded)) == 1
    (aggregate,) = _entries(_node(flooded), ev.MESSAGE_REFUSED_AGGREGATE)
    assert aggregate["detail"]["codes"] == {"malformed": 2, "unsupported-media-type": 1}
    metrics = flooded.get("/metrics").text
    assert 'migex_inbound_refusals_total{code="malformed",partner="unauthenticated"} 5.0' in metrics


@pytest.fixture
def proxied(federation: Federation, clock: FixedClock) -> Iterator[Callable[[str], TestClient]]:
    """Clients of one node that trusts 10.0.0.0/8 as proxies, each from its own peer."""

    def trusting(cfg: dict[str, Any]) -> None:
        _limited(cfg)
        cfg["listen"] = {"trusted_proxies": ["10.0.0.0/8"]}

    federation.mutate = trusting
    app = create_app(load_config(federation.write_config()), clock=clock)
    with ExitStack() as stack:
        # One client runs the lifespan; the others share its app and node.
        stack.enter_context(TestClient(app, raise_server_exceptions=False))

        def peer(host: str) -> TestClient:
            client = TestClient(app, raise_server_exceptions=False, client=(host, 40000))
            return client

        yield peer


def test_each_forwarded_source_has_its_own_rate(proxied: Callable[[str], TestClient]) -> None:
    proxy = proxied("10.1.2.3")
    _garbage(proxy, 5, **{"X-Forwarded-For": "203.0.113.7"})
    _garbage(proxy, 5, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.8, 10.9.9.9"})
    node = _node(proxy)
    sources = [e["detail"]["source"] for e in _entries(node, ev.MESSAGE_REFUSED)]
    assert sources == [source_digest("203.0.113.7")] * 3 + [source_digest("203.0.113.8")] * 3


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(
    proxied: Callable[[str], TestClient],
) -> None:
    direct = proxied("192.0.2.50")
    for n in range(5):
        _garbage(direct, 1, **{"X-Forwarded-For": f"203.0.113.{n}"})
    sources = {e["detail"]["source"] for e in _entries(_node(direct), ev.MESSAGE_REFUSED)}
    assert sources == {source_digest("192.0.2.50")}


def test_two_writers_share_one_bucket_and_one_tally(
    federation: Federation, clock: FixedClock
) -> None:
    federation.mutate = _limited
    config = load_config(federation.write_config())
    first = build_node(config, clock=clock)
    second = build_node(config, clock=clock, migrate_on_start=False)
    try:
        problem = Problem("malformed", "not a JWS")
        event = Facts(digest=None).refusal(problem, source=SOURCE)
        indices = [
            node.committer.run_sync(RefusalUnit(event, SOURCE, node.refusal_limits))
            for _ in range(5)
            for node in (first, second)
        ]
        assert sum(index is not None for index in indices) == 3
        clock.advance(60)
        assert _flush(second) == 1
        assert _flush(first) == 0
        (aggregate,) = _entries(first, ev.MESSAGE_REFUSED_AGGREGATE)
        assert aggregate["detail"]["count"] == 7
        assert _rows(first, rate_buckets.c.party, refusals.BUCKET_PREFIX) == 1
    finally:
        second.close()
        first.close()


def test_idle_source_buckets_are_forgotten(flooded: TestClient, clock: FixedClock) -> None:
    node = _node(flooded)
    _garbage(flooded, 4)
    clock.advance(2 * 3 / 0.01 + 1)
    assert _flush(node) == 1
    assert _rows(node, rate_buckets.c.party, refusals.BUCKET_PREFIX) == 0
