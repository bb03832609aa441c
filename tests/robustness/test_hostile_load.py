"""Hostile clients beside a partner under load, on PostgreSQL: nothing valid is lost.

Loops of hostile requests (NUL bytes in paths, queries and outbound records) run
alongside a partner's concurrent messages, and loops of units whose values PostgreSQL
refuses go straight to the writer, so they share batches with the partner's messages.
Every partner message must get 201 and be stored once; every hostile request must get
its own 4xx; the log must still verify against its signed checkpoint.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.exchange.inbox import AckUnit
from service.exchange.outbound import RequeueUnit
from service.protocol.problems import Problem
from service.runtime import Node
from tests.robustness import ledger
from tests.support.batches import queue_unit
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    OPERATOR_TOKEN,
    Federation,
    envelope_for,
    outbox_statistics,
)

pytestmark = pytest.mark.postgres

JOSE = {"Content-Type": "application/jose"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
VALID = 200
PARTNER_THREADS = 4
HOSTILE_ROUNDS = 400  # an upper bound per loop: the loops stop when the partner is done


@pytest.fixture
def database_url(pg_database: str) -> str:
    return pg_database


def hostile_requests(client: TestClient) -> list[Callable[[], Any]]:
    return [
        lambda: client.post("/v1/inbox/UZ:MIA/%00/ack", headers=CLIENT),
        lambda: client.post("/v1/operator/outbox/%00/retry", headers=OPERATOR),
        lambda: client.post("/v1/outbox", headers=CLIENT, json=outbox_statistics(type="x\u0000")),
        lambda: client.get("/v1/outbox/%00", headers=CLIENT),
        lambda: client.get("/v1/inbox?type=%00", headers=CLIENT),
        lambda: client.get("/v1/audit/search?party=%00", headers=AUDITOR),
    ]


def hostile_units(node: Node) -> list[Callable[[], Any]]:
    """Units that reach the writer with values PostgreSQL refuses (as if a value had
    slipped past the edge): each fails its batch's writes unless isolated."""
    return [
        lambda: AckUnit("UZ:MIA", "\x00", "client-1"),
        lambda: RequeueUnit(node.party, "\x00", "operator-1"),
        lambda: queue_unit(node, type="x\x00"),
    ]


def test_hostile_loops_beside_a_partner_lose_nothing_and_answer_every_message_201(
    client: TestClient, federation: Federation
) -> None:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    done = threading.Event()
    hostile_answers: Counter[str] = Counter()
    wrong: list[str] = []

    def http_loop(request: Callable[[], Any]) -> None:
        for _ in range(HOSTILE_ROUNDS):
            if done.is_set():
                return
            resp = request()
            hostile_answers["http"] += 1
            if resp.status_code != 422 or resp.json().get("code") != "invalid-parameters":
                wrong.append(f"{resp.request.url}: {resp.status_code} {resp.text[:200]}")

    def unit_loop(make: Callable[[], Any]) -> None:
        for _ in range(HOSTILE_ROUNDS):
            if done.is_set():
                return
            try:
                node.committer.run_sync(make(), timeout=30)
                wrong.append("a hostile unit was accepted")
            except Problem as problem:
                hostile_answers["units"] += 1
                if not 400 <= problem.status < 500:
                    wrong.append(f"unit: {problem.status} {problem.detail}")

    tokens = [federation.uz.sign(envelope_for(federation.uz)) for _ in range(VALID)]

    def partner(token: bytes) -> int:
        return client.post("/v1/messages", content=token, headers=JOSE).status_code

    loops = [*hostile_requests(client), *hostile_units(node)]
    with ThreadPoolExecutor(len(loops) + PARTNER_THREADS) as pool:
        hostile = [pool.submit(http_loop, loop) for loop in hostile_requests(client)] + [
            pool.submit(unit_loop, make) for make in hostile_units(node)
        ]
        with ThreadPoolExecutor(PARTNER_THREADS) as partners:
            statuses = Counter(partners.map(partner, tokens, timeout=300))
        done.set()
        for future in hostile:
            future.result(timeout=60)
    assert len(loops) == len(hostile)

    print(f"\nhostile load: partner answers {dict(statuses)}; hostile {dict(hostile_answers)}")
    assert statuses == Counter({201: VALID})
    assert wrong == []
    assert hostile_answers["http"] > 0
    assert hostile_answers["units"] > 0
    copies = ledger.copies_per_message(node.engines.reader)
    assert (len(copies), set(copies.values())) == (VALID, {1})
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    assert ledger.verify_log(node.engines.reader, vkey).ok
