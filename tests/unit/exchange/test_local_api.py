"""The local API of the agency's systems (client role) and of operators, over HTTP."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.clock import FixedClock
from service.db.tables import messages
from service.runtime import Node
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    OPERATOR_TOKEN,
    Federation,
    envelope_for,
    example_body,
)
from tests.support.nodes import outbox_statistics as statistics
from tests.unit.exchange import partner as answers
from tests.unit.exchange.partner import FakePartner, envelope_of
from tests.unit.exchange.sender import SETTINGS, Sender

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
# Credentials are checked before the database is touched: one backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def verification_request(**kw: Any) -> dict[str, Any]:
    return {
        "to": "UZ:MIA",
        "type": "citizenship.verification-request",
        "agreement": "kz-uz-2019",
        "purpose": "identity-verification",
        "body": example_body("citizenship.verification-request"),
        **kw,
    }


def receive(client: TestClient, sender: Any, **kw: Any) -> str:
    """A partner's message arrives at the node; its id."""
    env = envelope_for(sender, **kw)
    resp = client.post("/v1/messages", content=sender.sign(env), headers=JOSE)
    assert resp.status_code == 201, resp.text
    return env.id


def signed_body(client: TestClient, message_id: str) -> dict[str, Any]:
    """The body of the message as the node signed it for the partner."""
    with node_of(client).engines.reader.connect() as conn:
        token = conn.execute(
            select(messages.c.jws).where(messages.c.message_id == message_id)
        ).scalar_one()
    return envelope_of(bytes(token)).body


def audit(client: TestClient, event: str) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit/search", params={"event": event, "limit": 1000}, headers=AUDITOR)
    assert resp.status_code == 200, resp.text
    return [item["entry"] for item in resp.json()["entries"]]


def assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, Any] = resp.json()
    assert doc["code"] == code
    return doc


# -- sending --------------------------------------------------------------------------
def test_send_is_accepted_with_202_and_the_status_location(local: TestClient) -> None:
    resp = local.post("/v1/outbox", json=statistics(), headers=CLIENT)
    assert resp.status_code == 202, resp.text
    doc = resp.json()
    assert resp.headers["location"] == doc["status_url"] == f"/v1/outbox/{doc['id']}"
    assert (doc["status"], doc["removed_fields"]) == ("queued", [])
    status = local.get(doc["status_url"], headers=CLIENT).json()
    assert (status["status"], status["to"], status["attempts"]) == ("queued", "UZ:MIA", [])
    [queued] = audit(local, "message.queued")
    assert (queued["index"], queued["message_id"], queued["rule"]) == (
        doc["audit_index"],
        doc["id"],
        "uz-out-statistics",
    )


@pytest.mark.parametrize(
    ("item", "status", "code"),
    [
        pytest.param(
            statistics(
                type="migration.violation-notice",
                purpose="illegal-migration-control",
                body=example_body("migration.violation-notice"),
            ),
            403,
            "forbidden",
            id="no-rule",
        ),
        pytest.param(statistics(to="TJ:MIA"), 403, "forbidden", id="not-a-partner"),
        pytest.param(
            statistics(to="KG:SRS", agreement="kz-kg-2019"), 403, "agreement", id="not-in-force"
        ),
        pytest.param(
            statistics(body={"dataset_id": "KZ-1", "observations": "none"}),
            422,
            "schema",
            id="invalid-body",
        ),
    ],
)
def test_send_our_own_rules_do_not_allow_is_refused_and_audited(
    local: TestClient, item: dict[str, Any], status: int, code: str
) -> None:
    assert_problem(local.post("/v1/outbox", json=item, headers=CLIENT), status, code)
    [refused] = audit(local, "message.send-refused")
    assert (refused["code"], refused["to"], refused["type"]) == (code, item["to"], item["type"])
    assert audit(local, "message.queued") == []


def test_request_not_of_the_outbox_shape_is_invalid(local: TestClient) -> None:
    resp = local.post("/v1/outbox", json={**statistics(), "urgent": True}, headers=CLIENT)
    doc = assert_problem(resp, 422, "invalid-parameters")
    assert any(e["path"] == "/body/urgent" for e in doc["errors"])


def test_fields_outside_the_rule_are_cut_reported_and_recorded(
    local: TestClient, federation: Federation
) -> None:
    request_id = receive(local, federation.uz)
    body = copy.deepcopy(example_body("citizenship.verification-response"))
    body["person"] = {
        "names": {"latin": {"surname": "ZHAKSYBEKOVA", "given_names": "AIGERIM"}},
        "birth_date": "1991-03-14",
        "citizenships": ["KAZ"],
    }
    item = verification_request(
        type="citizenship.verification-response", body=body, reply_to=request_id
    )
    resp = local.post("/v1/outbox", json=item, headers=CLIENT)
    assert resp.status_code == 202, resp.text
    removed = ["person.birth_date", "person.citizenships"]
    assert resp.json()["removed_fields"] == removed
    assert local.get(resp.json()["status_url"], headers=CLIENT).json()["removed_fields"] == removed
    [queued] = audit(local, "message.queued")
    assert queued["detail"] == {"removed_fields": removed}
    assert signed_body(local, resp.json()["id"])["person"] == {"names": body["person"]["names"]}


def test_reply_to_a_message_received_from_that_partner_is_accepted(
    local: TestClient, federation: Federation
) -> None:
    request_id = receive(local, federation.uz)
    item = verification_request(
        type="citizenship.verification-response",
        body=example_body("citizenship.verification-response"),
        reply_to=request_id,
    )
    resp = local.post("/v1/outbox", json=item, headers=CLIENT)
    assert resp.status_code == 202, resp.text
    assert local.get(resp.json()["status_url"], headers=CLIENT).json()["reply_to"] == request_id


@pytest.mark.parametrize("origin", ["unknown", "another-partner", "our-own"])
def test_reply_to_must_name_a_message_received_from_that_partner(
    local: TestClient, federation: Federation, origin: str
) -> None:
    if origin == "another-partner":
        reply_to = receive(local, federation.kg, agreement="kz-kg-verification")
    elif origin == "our-own":
        reply_to = local.post("/v1/outbox", json=verification_request(), headers=CLIENT).json()[
            "id"
        ]
    else:
        reply_to = "01890a5d-ac96-774b-bcce-b302099a8057"
    item = verification_request(
        type="citizenship.verification-response",
        body=example_body("citizenship.verification-response"),
        reply_to=reply_to,
    )
    doc = assert_problem(
        local.post("/v1/outbox", json=item, headers=CLIENT), 422, "invalid-parameters"
    )
    assert reply_to in doc["detail"]
    [refused] = audit(local, "message.send-refused")
    assert refused["code"] == "invalid-parameters"


def test_status_lists_the_partners_replies(local: TestClient, federation: Federation) -> None:
    sent = local.post("/v1/outbox", json=verification_request(), headers=CLIENT).json()
    reply = receive(
        local,
        federation.uz,
        msg_type="citizenship.verification-response",
        reply_to=sent["id"],
    )
    status = local.get(sent["status_url"], headers=CLIENT).json()
    assert [(r["id"], r["from"], r["type"]) for r in status["replies"]] == [
        (reply, "UZ:MIA", "citizenship.verification-response")
    ]


def test_status_of_an_unknown_message_is_not_found(local: TestClient) -> None:
    assert_problem(
        local.get("/v1/outbox/01890a5d-ac96-774b-bcce-b302099a8057", headers=CLIENT),
        404,
        "not-found",
    )


# -- the inbox ------------------------------------------------------------------------
def test_inbox_pages_oldest_first_with_a_cursor(local: TestClient, federation: Federation) -> None:
    ids = [receive(local, federation.uz) for _ in range(3)]
    first = local.get("/v1/inbox", params={"limit": 2}, headers=CLIENT).json()
    assert [m["id"] for m in first["messages"]] == ids[:2]
    assert first["next_cursor"] is not None
    rest = local.get(
        "/v1/inbox", params={"limit": 2, "cursor": first["next_cursor"]}, headers=CLIENT
    ).json()
    assert ([m["id"] for m in rest["messages"]], rest["next_cursor"]) == (ids[2:], None)
    assert first["messages"][0]["body"] == example_body("citizenship.verification-request")


def test_inbox_filters_by_type(local: TestClient, federation: Federation) -> None:
    receive(local, federation.uz)
    stats = receive(
        local, federation.uz, msg_type="statistics.migration-flows", purpose="statistics"
    )
    page = local.get(
        "/v1/inbox", params={"type": "statistics.migration-flows"}, headers=CLIENT
    ).json()
    assert [m["id"] for m in page["messages"]] == [stats]


def test_ack_is_idempotent_and_audited_once(local: TestClient, federation: Federation) -> None:
    acked, other = receive(local, federation.uz), receive(local, federation.uz)
    url = f"/v1/inbox/UZ:MIA/{acked}/ack"
    assert local.post(url, headers=CLIENT).json()["changed"] is True
    again = local.post(url, headers=CLIENT)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    unacked = local.get("/v1/inbox", params={"unacked": True}, headers=CLIENT).json()
    assert [m["id"] for m in unacked["messages"]] == [other]
    [entry] = audit(local, "inbox.ack")
    assert (entry["message_id"], entry["detail"]["client"]) == (acked, "client-1")


def test_ack_of_an_unknown_message_is_not_found(local: TestClient, federation: Federation) -> None:
    message_id = receive(local, federation.uz)
    assert_problem(
        local.post(f"/v1/inbox/KG:SRS/{message_id}/ack", headers=CLIENT), 404, "not-found"
    )


# -- credentials ----------------------------------------------------------------------
CLIENT_ENDPOINTS = [
    ("POST", "/v1/outbox"),
    ("GET", "/v1/outbox/01890a5d-ac96-774b-bcce-b302099a8057"),
    ("GET", "/v1/inbox"),
    ("POST", "/v1/inbox/UZ:MIA/01890a5d-ac96-774b-bcce-b302099a8057/ack"),
]
OPERATOR_ENDPOINTS = [
    ("GET", "/v1/operator/outbox"),
    ("POST", "/v1/operator/outbox/01890a5d-ac96-774b-bcce-b302099a8057/retry"),
]


@SQLITE_ONLY
@pytest.mark.parametrize(("method", "path"), CLIENT_ENDPOINTS + OPERATOR_ENDPOINTS)
def test_local_endpoints_refuse_requests_without_a_token(
    local: TestClient, method: str, path: str
) -> None:
    resp = local.request(method, path, json=statistics() if path == "/v1/outbox" else None)
    assert_problem(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"].startswith("Bearer")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [(m, p, AUDITOR) for m, p in CLIENT_ENDPOINTS]
    + [(m, p, OPERATOR) for m, p in CLIENT_ENDPOINTS]
    + [(m, p, CLIENT) for m, p in OPERATOR_ENDPOINTS],
)
def test_local_endpoints_refuse_a_token_of_another_role(
    local: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    resp = local.request(
        method, path, headers=headers, json=statistics() if path == "/v1/outbox" else None
    )
    assert_problem(resp, 403, "insufficient-role")


# -- operators ------------------------------------------------------------------------
def test_failed_message_is_listed_for_operators_and_their_retry_delivers_it(
    local: TestClient, federation: Federation, clock: FixedClock
) -> None:
    partner = FakePartner(federation.uz, federation.kz.key.public(), clock)
    sender = Sender(node_of(local), partner, clock, settings=replace(SETTINGS, max_attempts=3))
    partner.then(*[answers.unavailable(503)] * 3)
    message_id = local.post("/v1/outbox", json=statistics(), headers=CLIENT).json()["id"]
    for _ in range(3):
        sender.deliver()
        clock.advance(3600)
    assert sender.deliver() == 0
    failed = local.get("/v1/operator/outbox", params={"state": "failed"}, headers=OPERATOR).json()
    assert [(m["message_id"], m["status"], m["attempts"]) for m in failed["messages"]] == [
        (message_id, "failed", 3)
    ]
    assert sender.attempt_outcomes(message_id) == ["retry", "retry", "failed"]
    resp = local.post(f"/v1/operator/outbox/{message_id}/retry", headers=OPERATOR)
    assert (resp.status_code, resp.json()["status"]) == (200, "queued")
    [requeued] = audit(local, "message.requeued")
    assert (requeued["message_id"], requeued["detail"]["operator"]) == (message_id, "operator-1")
    assert sender.deliver() == 1
    assert local.get(f"/v1/outbox/{message_id}", headers=CLIENT).json()["status"] == "delivered"
    pending = local.get("/v1/operator/outbox", params={"state": "failed"}, headers=OPERATOR)
    assert pending.json()["messages"] == []


def test_operator_retry_of_a_message_not_failed_is_refused(local: TestClient) -> None:
    message_id = local.post("/v1/outbox", json=statistics(), headers=CLIENT).json()["id"]
    resp = local.post(f"/v1/operator/outbox/{message_id}/retry", headers=OPERATOR)
    assert_problem(resp, 422, "invalid-parameters")
