"""PostgreSQL connections killed under load: 503 with Retry-After, then recovery alone.

An admin connection terminates every backend of the node's database again and again
(`pg_terminate_backend`) while several clients send messages and read the inbox. The
PostgreSQL server itself keeps running: it is shared.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.robustness import ledger
from tests.support.databases import PG_URL
from tests.support.nodes import CLIENT_TOKEN, Federation, envelope_for

pytestmark = pytest.mark.postgres

JOSE = {"Content-Type": "application/jose"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
REQUESTS = 160
SENDERS = 8
KILL = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = :db AND pid <> pg_backend_pid()"
)


@pytest.fixture
def database_url(pg_database: str) -> str:
    return pg_database


@pytest.fixture
def admin() -> Iterator[Engine]:
    assert PG_URL
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@dataclass
class Killer:
    """Terminates the node's connections until stopped; counts what it killed."""

    admin: Engine
    database: str
    stop: threading.Event = field(default_factory=threading.Event)
    killed: int = 0

    def run(self) -> None:
        with self.admin.connect() as conn:
            while not self.stop.wait(0.1):
                self.killed += int(conn.execute(KILL, {"db": self.database}).scalar_one())


@dataclass
class Outcome:
    statuses: Counter[int] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    receipts: dict[bytes, bytes] = field(default_factory=dict)
    unanswered: list[bytes] = field(default_factory=list)


def exercise(client: TestClient, federation: Federation, outcome: Outcome, n: int) -> None:
    token = b""
    if n % 4 == 0:
        resp = client.get("/v1/inbox", headers=CLIENT)
    else:
        token = federation.uz.sign(envelope_for(federation.uz))
        resp = client.post("/v1/messages", content=token, headers=JOSE)
    outcome.statuses[resp.status_code] += 1
    if resp.status_code == 503:
        doc: dict[str, Any] = resp.json()
        if (
            doc.get("code") != "unavailable"
            or "Retry-After" not in resp.headers
            or "Traceback" in resp.text
            or not resp.headers["content-type"].startswith("application/problem+json")
        ):
            outcome.bad.append(resp.text)
        if token:
            outcome.unanswered.append(token)
    elif resp.status_code not in (200, 201):
        outcome.bad.append(f"{resp.status_code}: {resp.text}")
    elif token:
        outcome.receipts[token] = resp.content


@pytest.fixture
def outage(client: TestClient, federation: Federation, admin: Engine) -> Outcome:
    """Run the load while connections are being killed; then stop killing."""
    killer = Killer(admin, str(make_url(federation.database_url).database))
    thread = threading.Thread(target=killer.run)
    outcome = Outcome()
    thread.start()
    try:
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(lambda n: exercise(client, federation, outcome, n), range(REQUESTS)))
    finally:
        killer.stop.set()
        thread.join()
    assert killer.killed > 0, "no connection was killed"
    print(
        f"\ndatabase outage: {killer.killed} connections killed; answers {dict(outcome.statuses)}"
    )
    return outcome


def test_requests_in_flight_get_503_with_retry_after_and_never_500(outage: Outcome) -> None:
    assert outage.bad == []
    assert outage.statuses[503] > 0, f"no request met a killed connection: {outage.statuses}"
    assert set(outage.statuses) <= {200, 201, 503}, outage.statuses


def test_node_recovers_without_restart(
    outage: Outcome, client: TestClient, federation: Federation
) -> None:
    fresh = client.post(
        "/v1/messages", content=federation.uz.sign(envelope_for(federation.uz)), headers=JOSE
    )
    ready = client.get("/v1/ready")
    assert (fresh.status_code, ready.status_code) == (201, 200), (fresh.text, ready.text)


def test_messages_refused_during_the_outage_are_stored_once_when_resent(
    outage: Outcome, client: TestClient, federation: Federation
) -> None:
    again = Counter(
        client.post("/v1/messages", content=token, headers=JOSE).status_code
        for token in outage.unanswered + list(outage.receipts)
    )
    node = client.app.state.node  # type: ignore[attr-defined]
    copies = ledger.copies_per_message(node.engines.reader)
    sent = len(outage.unanswered) + len(outage.receipts)
    assert set(again) <= {200, 201}, again
    assert (len(copies), set(copies.values())) == (sent, {1})
