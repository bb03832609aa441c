"""Hostile values in paths, queries and bodies are refused at the edge, on every database.

A NUL byte, a control character, an over-long text or a number past a column's range
is an `invalid-parameters` problem (422) before any database work: nothing is written,
and the same request is answered the same way on SQLite and on PostgreSQL (where such
values used to reach the database and fail there, with 500 or a failed batch).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.audit import store
from service.protocol.envelope import Envelope
from service.runtime import Node
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    OPERATOR_TOKEN,
    Federation,
    envelope_for,
    outbox_statistics,
)

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
MESSAGE_ID = "01935c2e-6c58-70f8-843f-ecca6ffc2c2b"
BEYOND_JSON_INTEGERS = 2**53

READS = [
    ("/v1/outbox/%00", CLIENT),
    ("/v1/outbox/01935c2e-6c58-70f8-843f-ecca6ffc2c2b%0A", CLIENT),
    (f"/v1/outbox/{'a' * 5000}", CLIENT),
    ("/v1/inbox?type=%00", CLIENT),
    ("/v1/inbox?type=citizenship.verification-request%01", CLIENT),
    (f"/v1/inbox?type={'a' * 65}", CLIENT),
    (f"/v1/inbox?cursor={BEYOND_JSON_INTEGERS}", CLIENT),
    ("/v1/inbox?cursor=-1", CLIENT),
    ("/v1/audit/search?party=%00", AUDITOR),
    ("/v1/audit/search?party=UZ:MIA%00", AUDITOR),
    ("/v1/audit/search?type=%00", AUDITOR),
    ("/v1/audit/search?outcome=%00", AUDITOR),
    ("/v1/audit/search?event=%00", AUDITOR),
    ("/v1/audit/search?event=message.accepted%0D", AUDITOR),
    ("/v1/audit/search?message_id=%00", AUDITOR),
    (f"/v1/audit/search?cursor={BEYOND_JSON_INTEGERS}", AUDITOR),
]
WRITES: list[tuple[str, dict[str, str], dict[str, Any] | None]] = [
    ("/v1/inbox/UZ:MIA/%00/ack", CLIENT, None),
    (f"/v1/inbox/%00/{MESSAGE_ID}/ack", CLIENT, None),
    (f"/v1/inbox/UZ:MIA%00/{MESSAGE_ID}/ack", CLIENT, None),
    ("/v1/operator/outbox/%00/retry", OPERATOR, None),
    (f"/v1/operator/outbox/{MESSAGE_ID}%7F/retry", OPERATOR, None),
    ("/v1/outbox", CLIENT, outbox_statistics(type="x\u0000")),
    ("/v1/outbox", CLIENT, outbox_statistics(type="statistics.migration-flows\n")),
    ("/v1/outbox", CLIENT, outbox_statistics(type="statistics." + "a" * 60)),
    ("/v1/outbox", CLIENT, outbox_statistics(agreement="kz-uz-2019\u0000")),
    ("/v1/outbox", CLIENT, outbox_statistics(purpose="statistics\u0000")),
    ("/v1/outbox", CLIENT, outbox_statistics(to="UZ:MIA\u0000")),
    ("/v1/outbox", CLIENT, outbox_statistics(reply_to="\u0000")),
    # A UUID of another variant than RFC 9562's could not be signed as reply_to.
    ("/v1/outbox", CLIENT, outbox_statistics(reply_to="01935c2e-6c58-70f8-043f-ecca6ffc2c2b")),
]


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def log_size(client: TestClient) -> int:
    with node_of(client).engines.reader.connect() as conn:
        return store.read_head(conn).size


def assert_refused_at_the_edge(client: TestClient, resp: Any, size_before: int) -> None:
    assert resp.status_code == 422, resp.text
    doc = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert doc["code"] == "invalid-parameters"
    assert doc["errors"], doc
    assert log_size(client) == size_before  # nothing was written


@pytest.mark.parametrize(("path", "headers"), READS)
def test_hostile_read_parameters_are_invalid_parameters(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    before = log_size(client)
    assert_refused_at_the_edge(client, client.get(path, headers=headers), before)


@pytest.mark.parametrize(("path", "headers", "body"), WRITES)
def test_hostile_write_parameters_are_invalid_parameters(
    client: TestClient, path: str, headers: dict[str, str], body: dict[str, Any] | None
) -> None:
    before = log_size(client)
    assert_refused_at_the_edge(client, client.post(path, headers=headers, json=body), before)


def receive(client: TestClient, federation: Federation) -> Envelope:
    env = envelope_for(federation.uz)
    resp = client.post(
        "/v1/messages",
        content=federation.uz.sign(env),
        headers={"Content-Type": "application/jose"},
    )
    assert resp.status_code == 201, resp.text
    return env


def test_an_inbox_cursor_past_32_bits_reads_on(client: TestClient, federation: Federation) -> None:
    """Keys are 64-bit: a cursor past 2**31 is a position like any other, not an error."""
    env = receive(client, federation)
    assert [
        m["id"] for m in client.get("/v1/inbox?cursor=0", headers=CLIENT).json()["messages"]
    ] == [env.id]
    page = client.get(f"/v1/inbox?cursor={2**31}", headers=CLIENT)
    assert (page.status_code, page.json()) == (200, {"messages": [], "next_cursor": None})


def test_valid_requests_still_pass_the_bounds(client: TestClient, federation: Federation) -> None:
    env = receive(client, federation)
    queued = client.post("/v1/outbox", headers=CLIENT, json=outbox_statistics())
    assert queued.status_code == 202, queued.text
    assert client.get(f"/v1/outbox/{queued.json()['id']}", headers=CLIENT).status_code == 200
    assert client.post(f"/v1/inbox/UZ:MIA/{env.id}/ack", headers=CLIENT).json()["acked"]
    found = client.get(
        "/v1/audit/search",
        params={
            "party": "UZ:MIA",
            "type": env.type,
            "outcome": "accepted",
            "event": "message.accepted",
            "message_id": env.id,
            "cursor": BEYOND_JSON_INTEGERS - 1,
        },
        headers=AUDITOR,
    ).json()["entries"]
    assert [e["entry"]["message_id"] for e in found] == [env.id]
