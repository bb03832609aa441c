"""Retention: old message bodies are purged; receipts, digests and audit entries stay."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from service import cli
from service.audit import queries, store
from service.audit.stored import check_stored
from service.clock import FixedClock, rfc3339
from service.config import load_config
from service.db.tables import signed_versions
from service.exchange.retention import DAY, purge_sync
from service.main import create_app
from service.runtime import Node
from tests.robustness import ledger
from tests.support.nodes import (
    CLIENT_TOKEN,
    NOW,
    OPERATOR_TOKEN,
    Federation,
    envelope_for,
    outbox_statistics,
)

JOSE = {"Content-Type": "application/jose"}
CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
LATER = NOW + 400 * DAY  # past the default retention of 365 days


def refuse_connections(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@dataclass
class Running:
    client: TestClient
    federation: Federation
    clock: FixedClock

    @property
    def node(self) -> Node:
        node: Node = self.client.app.state.node  # type: ignore[attr-defined]
        return node

    def receive(self, **kw: Any) -> tuple[bytes, httpx.Response]:
        token = self.federation.uz.sign(
            envelope_for(self.federation.uz, iat=int(self.clock()), **kw)
        )
        return token, self.client.post("/v1/messages", content=token, headers=JOSE)

    def inbox(self) -> dict[str, dict[str, Any]]:
        resp = self.client.get("/v1/inbox", headers=CLIENT)
        assert resp.status_code == 200, resp.text
        return {m["id"]: m for m in resp.json()["messages"]}

    def send_failing(self) -> str:
        """Queue an outbound message whose single delivery attempt fails."""
        resp = self.client.post(
            "/v1/outbox",
            headers=CLIENT,
            json=outbox_statistics(),
        )
        assert resp.status_code == 202, resp.text
        message_id: str = resp.json()["id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = self.client.get(f"/v1/outbox/{message_id}", headers=CLIENT).json()
            if status["status"] == "failed":
                return message_id
            time.sleep(0.02)
        raise AssertionError(f"outbound message did not fail in time: {status}")


def _start(
    federation: Federation, clock: FixedClock, retention: dict[str, Any] | None = None
) -> TestClient:
    def mutate(cfg: dict[str, Any]) -> None:
        cfg["delivery"] = {"max_attempts": 1}
        if retention:
            cfg["retention"] = retention

    federation.mutate = mutate
    config = load_config(federation.write_config())
    app = create_app(config, clock=clock, transport=httpx.MockTransport(refuse_connections))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def running(federation: Federation, clock: FixedClock) -> Iterator[Running]:
    with _start(federation, clock) as client:
        yield Running(client, federation, clock)


def test_purge_clears_old_inbound_bodies_and_marks_them_purged(running: Running) -> None:
    running.receive()
    running.clock.set(NOW + 10)
    running.receive()
    report = purge_sync(running.node.committer, now=NOW + 365 * DAY + 5, body_days=365)
    inbox = running.inbox()
    old_id = ledger.stored_rows(running.node.engines.reader)[0]["message_id"]
    assert report.inbound == 1
    assert [(m["id"] == old_id, m["purged"], m["body"] is None) for m in inbox.values()] == [
        (True, True, True),
        (False, False, False),
    ]


def test_purged_row_keeps_digest_and_receipt_but_not_the_bytes(running: Running) -> None:
    running.receive()
    before = ledger.stored_rows(running.node.engines.reader)[0]
    purge_sync(running.node.committer, now=LATER, body_days=365)
    after = ledger.stored_rows(running.node.engines.reader)[0]
    assert (after["jws"], after["purged_at"]) == (None, NOW)
    assert (after["digest"], after["receipt"]) == (before["digest"], before["receipt"])


def test_redelivery_of_a_purged_message_answers_200_with_the_original_receipt(
    running: Running,
) -> None:
    token, first = running.receive()
    purge_sync(running.node.committer, now=LATER, body_days=365)
    again = running.client.post("/v1/messages", content=token, headers=JOSE)
    assert (again.status_code, again.content) == (200, first.content)
    assert len(ledger.stored_rows(running.node.engines.reader)) == 1


def test_finished_outbound_message_loses_its_body_and_signed_copies(running: Running) -> None:
    message_id = running.send_failing()
    purge_sync(running.node.committer, now=LATER, body_days=365)
    row = ledger.stored_rows(running.node.engines.reader, "out")[0]
    with running.node.engines.reader.connect() as conn:
        copies = conn.execute(
            select(func.count())
            .select_from(signed_versions)
            .where(signed_versions.c.message_pk == row["pk"])
        ).scalar_one()
    assert (row["message_id"], row["jws"], row["purged_at"] is not None, copies) == (
        message_id,
        None,
        True,
        0,
    )


def test_outbound_message_still_to_deliver_keeps_its_body(
    federation: Federation, clock: FixedClock
) -> None:
    config = load_config(federation.write_config())
    with TestClient(create_app(config, clock=clock, run_delivery=False)) as client:
        resp = client.post(
            "/v1/outbox",
            headers=CLIENT,
            json=outbox_statistics(),
        )
        assert resp.status_code == 202, resp.text
        node: Node = client.app.state.node  # type: ignore[attr-defined]
        report = purge_sync(node.committer, now=LATER, body_days=365)
        row = ledger.stored_rows(node.engines.reader, "out")[0]
    assert (report.count, row["jws"] is not None, row["purged_at"]) == (0, True, None)


def test_purge_is_audited_and_the_log_still_verifies(running: Running) -> None:
    running.receive()
    running.receive()
    report = purge_sync(running.node.committer, now=LATER, body_days=365)
    engine = running.node.engines.reader
    entries = ledger.entries(engine)
    purges = [e for e in entries if e["event"] == "retention.purge"]
    assert [e["index"] for e in purges] == list(report.audit_indices)
    assert purges[0]["detail"] == {
        "category": "citizenship-checks",
        "count": 2,
        "inbound": 2,
        "outbound": 0,
        "cutoff": rfc3339(LATER - 365 * DAY),
    }
    assert [e["event"] for e in entries].count("message.accepted") == 2
    verified = ledger.verify_log(engine, running.node.audit_vkey)
    assert verified.ok, verified.reason
    # The purged messages' digests are still checked against the log.
    with engine.connect() as conn:
        size = store.read_head(conn).size
    stored = check_stored(engine, list(queries.export_lines(engine, 0, size)))
    assert (stored.findings, stored.messages, stored.purged) == ([], 2, 2)


def test_purge_goes_in_batches_each_with_its_own_entry(running: Running) -> None:
    for _ in range(5):
        running.receive()
    report = purge_sync(running.node.committer, now=LATER, body_days=365, batch_size=2)
    purges = [
        e["detail"]["count"]
        for e in ledger.entries(running.node.engines.reader)
        if e["event"] == "retention.purge"
    ]
    assert (report.batches, report.count, purges) == (3, 5, [2, 2, 1])


def test_second_purge_finds_nothing_and_appends_nothing(running: Running) -> None:
    running.receive()
    purge_sync(running.node.committer, now=LATER, body_days=365)
    size = ledger.tree_size(running.node.engines.reader)
    again = purge_sync(running.node.committer, now=LATER, body_days=365)
    assert (again.count, ledger.tree_size(running.node.engines.reader)) == (0, size)


def test_node_purges_periodically(federation: Federation, clock: FixedClock) -> None:
    retention = {"message_body_days": 1, "purge_interval_seconds": 0.05}
    with _start(federation, clock, retention) as client:
        running = Running(client, federation, clock)
        running.receive()
        clock.advance(2 * DAY)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            m["purged"] for m in running.inbox().values()
        ):
            time.sleep(0.02)
        assert [m["purged"] for m in running.inbox().values()] == [True]


def test_cli_purge_reports_what_it_purged(federation: Federation) -> None:
    clock = FixedClock(float(int(time.time() - 3 * DAY)))
    with _start(federation, clock, {"message_body_days": 1}) as client:
        Running(client, federation, clock).receive()
    result = CliRunner().invoke(
        cli.app, ["retention", "purge", "--config", str(federation.tmp / "kz.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["purged"] == 1


def test_operator_cannot_requeue_a_purged_message(running: Running) -> None:
    message_id = running.send_failing()
    purge_sync(running.node.committer, now=LATER, body_days=365)
    resp = running.client.post(
        f"/v1/operator/outbox/{message_id}/retry",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    assert resp.status_code == 422, resp.text
    assert "purged" in resp.json()["detail"]
