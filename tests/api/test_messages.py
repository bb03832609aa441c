"""POST /v1/messages through HTTP: acceptance, idempotency, and every refusal code."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.protocol import envelope, jws
from service.protocol.receipts import message_digest
from service.runtime import Node
from tests.support.nodes import AUDITOR_TOKEN, NOW, Federation, envelope_for

JOSE = {"Content-Type": "application/jose"}


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/messages", content=body, headers=headers or JOSE)


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def audit_entries(client: TestClient) -> list[dict[str, Any]]:
    resp = client.get(
        "/v1/audit/search",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"},
    )
    assert resp.status_code == 200, resp.text
    return [
        item["entry"] for item in resp.json()["entries"] if item["entry"]["event"] != "audit.query"
    ]


def stored_count(client: TestClient) -> int:
    from service.db.tables import messages

    with node_of(client).engines.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


def assert_refused(resp: Any, code: str, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, Any] = resp.json()
    assert doc["code"] == code
    assert doc["type"] == f"urn:migex:problem:{code}"
    assert doc["status"] == status
    assert doc["title"]
    assert doc["detail"]
    return doc


def test_accepts_a_signed_message_with_a_signed_receipt(
    client: TestClient, federation: Federation
) -> None:
    env = envelope_for(federation.uz)
    token = federation.uz.sign(env)
    resp = post(client, token)
    assert resp.status_code == 201, resp.text
    assert resp.headers["content-type"] == "application/jose"
    parsed = jws.parse_compact(resp.content)
    jws.verify(parsed, federation.kz.key.public())
    receipt = envelope.parse_payload(parsed.payload)
    assert receipt.type == "receipt"
    assert receipt.iss == "KZ:MIA"
    assert receipt.aud == "UZ:MIA"
    assert receipt.reply_to == env.id
    assert (receipt.agreement, receipt.purpose) == (env.agreement, env.purpose)
    assert receipt.body["status"] == "accepted"
    assert receipt.body["digest"] == message_digest(token)
    accepted = [e for e in audit_entries(client) if e["event"] == "message.accepted"]
    assert [e["index"] for e in accepted] == [receipt.body["audit_index"]]
    assert accepted[0]["digest"] == message_digest(token)
    assert accepted[0]["rule"] == "uz-in-verification"


def test_redelivery_returns_the_original_receipt_and_stores_once(
    client: TestClient, federation: Federation
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    first = post(client, token)
    second = post(client, token)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.content == first.content
    assert stored_count(client) == 1
    assert audit_entries(client)[0]["event"] == "message.redelivered"


def test_id_reused_with_other_bytes_is_a_conflict(
    client: TestClient, federation: Federation
) -> None:
    env = envelope_for(federation.uz)
    assert post(client, federation.uz.sign(env)).status_code == 201
    other = envelope_for(federation.uz, msg_id=env.id, iat=NOW + 1)
    assert_refused(post(client, federation.uz.sign(other)), "conflict", 409)
    assert stored_count(client) == 1


def test_body_over_the_limit_is_too_large(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory(lambda cfg: cfg.setdefault("limits", {}).update(max_message_bytes=2048))
    assert_refused(post(client, b"a" * 4096), "too-large", 413)


def test_other_media_type_is_unsupported(client: TestClient, federation: Federation) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    resp = post(client, token, {"Content-Type": "application/json"})
    assert_refused(resp, "unsupported-media-type", 415)


@pytest.mark.parametrize(
    "body",
    [b"not-a-jws", b"a.b", b"a.b.c.d", b"eyJhbGciOiJFZDI1NTE5In0=.e30.c2ln", b"\xff\xfe.e30.c2ln"],
)
def test_garbage_is_malformed(client: TestClient, body: bytes) -> None:
    assert_refused(post(client, body), "malformed", 400)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_extra_header_member_is_a_bad_header(client: TestClient, federation: Federation) -> None:
    header = {"alg": "Ed25519", "kid": federation.uz.kid, "typ": "migex+jws", "crit": ["exp"]}
    payload = envelope.encode_payload(envelope_for(federation.uz))
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}".encode()
    signature = jws.sign_raw(federation.uz.key.private, "Ed25519", signing_input)
    token = signing_input + b"." + _b64(signature).encode()
    assert_refused(post(client, token), "bad-header", 400)


def test_unknown_kid_is_an_unknown_key(client: TestClient, federation: Federation) -> None:
    header = {"alg": "Ed25519", "kid": "UZ:MIA#nope", "typ": "migex+jws"}
    payload = envelope.encode_payload(envelope_for(federation.uz))
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}".encode()
    signature = jws.sign_raw(federation.uz.key.private, "Ed25519", signing_input)
    assert_refused(
        post(client, signing_input + b"." + _b64(signature).encode()), "unknown-key", 401
    )


def test_key_of_another_party_is_an_unknown_key(client: TestClient, federation: Federation) -> None:
    env = envelope_for(federation.uz, msg_type="statistics.migration-flows", purpose="statistics")
    forged = envelope.Envelope(**{**env.to_dict(), "iss": "KG:SRS"})
    assert_refused(post(client, federation.uz.sign(forged)), "unknown-key", 401)


def test_alg_off_the_partner_allow_list_is_refused(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    def only_ed25519(cfg: dict[str, Any]) -> None:
        federation.partner(cfg, "UZ:MIA")["keys"][0]["algs"] = ["Ed25519"]

    client = client_factory(only_ed25519)
    token = federation.uz.sign(envelope_for(federation.uz), alg="EdDSA")
    assert_refused(post(client, token), "alg-not-allowed", 401)


def test_legacy_eddsa_is_accepted_when_allowed(client: TestClient, federation: Federation) -> None:
    token = federation.uz.sign(envelope_for(federation.uz), alg="EdDSA")
    assert post(client, token).status_code == 201


def test_flipped_signature_bit_is_a_bad_signature(
    client: TestClient, federation: Federation
) -> None:
    head, payload, sig = federation.uz.sign(envelope_for(federation.uz)).split(b".")
    raw = bytearray(base64.urlsafe_b64decode(sig + b"=="))
    raw[0] ^= 1
    token = b".".join([head, payload, _b64(bytes(raw)).encode()])
    assert_refused(post(client, token), "bad-signature", 401)


def test_missing_envelope_member_is_a_bad_envelope(
    client: TestClient, federation: Federation
) -> None:
    data = envelope_for(federation.uz).to_dict()
    del data["purpose"]
    token = jws.sign_compact(federation.uz.key, json.dumps(data).encode())
    doc = assert_refused(post(client, token), "bad-envelope", 422)
    assert any(e["path"] == "/purpose" for e in doc["errors"])


def test_message_for_another_node_is_the_wrong_audience(
    client: TestClient, federation: Federation
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz, aud="TJ:MIA"))
    assert_refused(post(client, token), "wrong-audience", 422)


@pytest.mark.parametrize("offset", [-301, 301])
def test_iat_outside_the_skew_is_stale(
    client: TestClient, federation: Federation, offset: int
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz, iat=NOW + offset))
    assert_refused(post(client, token), "stale", 422)


@pytest.mark.parametrize("offset", [-300, 300])
def test_iat_at_the_edge_of_the_skew_is_accepted(
    client: TestClient, federation: Federation, offset: int
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz, iat=NOW + offset))
    assert post(client, token).status_code == 201


def test_agreement_not_yet_in_force_is_refused(client: TestClient, federation: Federation) -> None:
    env = envelope_for(
        federation.kg,
        msg_type="statistics.migration-flows",
        agreement="kz-kg-2019",
        purpose="statistics",
    )
    doc = assert_refused(post(client, federation.kg.sign(env)), "agreement", 403)
    assert "2027-07-01" in doc["detail"]


def test_message_no_rule_allows_is_forbidden(client: TestClient, federation: Federation) -> None:
    env = envelope_for(
        federation.uz,
        msg_type="migration.violation-notice",
        purpose="illegal-migration-control",
    )
    assert_refused(post(client, federation.uz.sign(env)), "forbidden", 403)


def test_invalid_body_lists_each_failing_field(client: TestClient, federation: Federation) -> None:
    body = envelope_for(federation.uz).body
    body = json.loads(json.dumps(body))
    body["reason"] = 17
    body["unexpected"] = True
    env = envelope_for(federation.uz, body=body)
    doc = assert_refused(post(client, federation.uz.sign(env)), "schema", 422)
    paths = {e["path"] for e in doc["errors"]}
    assert {"/body/reason", "/body/unexpected"} <= paths
    assert all(e["message"] for e in doc["errors"])


def test_partner_over_its_rate_is_limited_with_retry_after(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    def slow(cfg: dict[str, Any]) -> None:
        federation.partner(cfg, "UZ:MIA")["rate_limit"] = {"per_second": 0.5, "burst": 2}

    client = client_factory(slow)
    codes = [
        post(client, federation.uz.sign(envelope_for(federation.uz))).status_code for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    resp = post(client, federation.uz.sign(envelope_for(federation.uz)))
    assert_refused(resp, "rate-limited", 429)
    assert int(resp.headers["Retry-After"]) >= 1


def test_every_refusal_leaves_an_audit_entry(client: TestClient, federation: Federation) -> None:
    post(client, b"garbage")
    post(client, federation.uz.sign(envelope_for(federation.uz, aud="TJ:MIA")))
    refused = [e for e in audit_entries(client) if e["event"] == "message.refused"]
    assert [e["code"] for e in refused] == ["wrong-audience", "malformed"]
    assert refused[0]["from"] == "UZ:MIA"
    assert refused[1]["from"] is None
    assert stored_count(client) == 0


def test_byte_identical_copy_outside_the_skew_gets_the_original_receipt(
    client: TestClient, federation: Federation, clock: Any
) -> None:
    token = federation.uz.sign(envelope_for(federation.uz))
    first = post(client, token)
    clock.advance(3600)
    again = post(client, token)
    assert again.status_code == 200
    assert again.content == first.content
    assert stored_count(client) == 1


def test_stale_copy_with_other_bytes_is_still_stale(
    client: TestClient, federation: Federation, clock: Any
) -> None:
    env = envelope_for(federation.uz)
    assert post(client, federation.uz.sign(env)).status_code == 201
    clock.advance(3600)
    other = envelope_for(federation.uz, msg_id=env.id, iat=NOW + 1)
    assert_refused(post(client, federation.uz.sign(other)), "stale", 422)
