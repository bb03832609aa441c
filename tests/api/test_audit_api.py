"""The auditors' API on SQLite and PostgreSQL: credentials, pages, proofs, search, export."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient

from service.audit import merkle
from service.audit.checkpoint import verify_checkpoint
from service.audit.offline import verify_export
from tests.support.nodes import AUDITOR_TOKEN, CLIENT_TOKEN, NOW, Federation, envelope_for

AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}

ENDPOINTS = [
    "/v1/audit/checkpoint",
    "/v1/audit/entries?start=0&end=1",
    "/v1/audit/proofs/inclusion?index=0&size=1",
    "/v1/audit/proofs/consistency?from=1&to=1",
    "/v1/audit/search",
    "/v1/audit/export",
]


def exchange(client: TestClient, federation: Federation, count: int = 3) -> list[str]:
    ids = []
    for _ in range(count):
        env = envelope_for(federation.uz)
        assert (
            client.post("/v1/messages", content=federation.uz.sign(env), headers=JOSE).status_code
            == 201
        )
        ids.append(env.id)
    client.post("/v1/messages", content=b"garbage", headers=JOSE)
    return ids


def checkpoint(client: TestClient) -> tuple[str, Any]:
    note = client.get("/v1/audit/checkpoint", headers=AUDITOR).text
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    return note, verify_checkpoint(note, vkey)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_audit_endpoints_refuse_requests_without_credentials(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_audit_endpoints_refuse_a_client_token(client: TestClient, path: str) -> None:
    resp = client.get(path, headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
    assert resp.status_code == 403
    assert resp.json()["code"] == "insufficient-role"


def test_audit_endpoints_refuse_an_unknown_token(client: TestClient) -> None:
    resp = client.get("/v1/audit/checkpoint", headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401


def test_checkpoint_is_a_signed_note_under_the_published_key(
    client: TestClient, federation: Federation
) -> None:
    exchange(client, federation)
    resp = client.get("/v1/audit/checkpoint", headers=AUDITOR)
    assert resp.headers["content-type"].startswith("text/plain")
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    assert vkey.startswith("migex/KZ:MIA+")
    cp = verify_checkpoint(resp.text, vkey)
    assert cp.origin == "migex/KZ:MIA"
    assert cp.size >= 5


def test_entries_carry_the_exact_hashed_bytes(client: TestClient, federation: Federation) -> None:
    exchange(client, federation)
    items = client.get("/v1/audit/entries?start=0&end=4", headers=AUDITOR).json()["entries"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    for item in items:
        leaf = base64.b64decode(item["leaf_data"])
        assert leaf == rfc8785.dumps(item["entry"])
        assert item["entry"]["index"] == item["index"]


def test_entries_outside_the_tree_are_invalid_parameters(client: TestClient) -> None:
    resp = client.get("/v1/audit/entries?start=0&end=100000", headers=AUDITOR)
    assert resp.status_code == 422
    assert resp.json()["code"] == "invalid-parameters"


def test_entries_never_hold_personal_data(client: TestClient, federation: Federation) -> None:
    exchange(client, federation)
    body = json.dumps(envelope_for(federation.uz).body)
    text = client.get("/v1/audit/export", headers=AUDITOR).text
    for value in ("061211600012", "791028302728"):
        if value in body:
            assert value not in text


def test_inclusion_proof_of_an_accepted_message_verifies(
    client: TestClient, federation: Federation
) -> None:
    ids = exchange(client, federation)
    _, cp = checkpoint(client)
    found = client.get(f"/v1/audit/search?message_id={ids[1]}", headers=AUDITOR).json()["entries"]
    assert [i["entry"]["event"] for i in found] == ["message.accepted"]
    item = found[0]
    proof = client.get(
        f"/v1/audit/proofs/inclusion?index={item['index']}&size={cp.size}", headers=AUDITOR
    ).json()
    merkle.verify_inclusion(
        item["index"],
        cp.size,
        merkle.leaf_hash(base64.b64decode(item["leaf_data"])),
        [base64.b64decode(h) for h in proof["hashes"]],
        cp.root,
    )


def test_consistency_proof_between_two_checkpoints_verifies(
    client: TestClient, federation: Federation
) -> None:
    exchange(client, federation, 2)
    _, old = checkpoint(client)
    exchange(client, federation, 3)
    _, new = checkpoint(client)
    proof = client.get(
        f"/v1/audit/proofs/consistency?from={old.size}&to={new.size}", headers=AUDITOR
    ).json()
    merkle.verify_consistency(
        old.size, new.size, old.root, new.root, [base64.b64decode(h) for h in proof["hashes"]]
    )


def test_search_filters_newest_first_with_a_cursor(
    client: TestClient, federation: Federation, clock: Any
) -> None:
    exchange(client, federation, 5)
    first = client.get(
        "/v1/audit/search?party=UZ:MIA&outcome=accepted&limit=2", headers=AUDITOR
    ).json()
    indices = [i["index"] for i in first["entries"]]
    assert indices == sorted(indices, reverse=True)
    assert len(indices) == 2
    second = client.get(
        f"/v1/audit/search?party=UZ:MIA&outcome=accepted&limit=2&cursor={first['next_cursor']}",
        headers=AUDITOR,
    ).json()
    assert max(i["index"] for i in second["entries"]) < min(indices)
    refused = client.get("/v1/audit/search?outcome=refused", headers=AUDITOR).json()["entries"]
    assert {i["entry"]["code"] for i in refused} == {"malformed"}
    window = client.get(
        f"/v1/audit/search?since={NOW}&until={NOW + 1}&type=citizenship.verification-request",
        headers=AUDITOR,
    ).json()["entries"]
    assert len(window) == 5
    empty = client.get(f"/v1/audit/search?since={NOW + 10}", headers=AUDITOR).json()
    assert [i["entry"]["event"] for i in empty["entries"]] == []


def test_export_verifies_offline_against_a_checkpoint(
    client: TestClient, federation: Federation
) -> None:
    exchange(client, federation)
    note, _ = checkpoint(client)
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    lines = client.get("/v1/audit/export", headers=AUDITOR).text.splitlines()
    report = verify_export(lines, note, vkey)
    assert report.ok, report.reason


def test_every_auditor_query_is_itself_recorded(client: TestClient) -> None:
    client.get("/v1/audit/checkpoint", headers=AUDITOR)
    client.get("/v1/audit/search?party=UZ:MIA", headers=AUDITOR)
    queries = client.get("/v1/audit/search?event=audit.query", headers=AUDITOR).json()["entries"]
    endpoints = [q["entry"]["detail"]["endpoint"] for q in queries]
    assert endpoints[:3] == ["search", "search", "checkpoint"]
    assert queries[1]["entry"]["detail"]["party"] == "UZ:MIA"
    assert queries[0]["entry"]["detail"]["auditor"] == "auditor-1"


def test_prove_shows_a_message_is_in_a_signed_tree(
    client: TestClient, federation: Federation
) -> None:
    from service.audit.proving import prove_message

    ids = exchange(client, federation)
    note, _ = checkpoint(client)
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    lines = prove_message(
        "http://testserver", AUDITOR_TOKEN, ids[0], note, vkey, transport=client._transport
    )
    assert len(lines) == 1
    assert lines[0].startswith("ok: entry ")
    assert "message.accepted" in lines[0]


def test_prove_refuses_a_checkpoint_under_another_key(
    client: TestClient, federation: Federation
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.audit.note import verifier_key
    from service.audit.proving import prove_message

    ids = exchange(client, federation)
    note, _ = checkpoint(client)
    other = verifier_key("migex/KZ:MIA", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError, match=r"(?i)signature|verif"):
        prove_message(
            "http://testserver", AUDITOR_TOKEN, ids[0], note, other, transport=client._transport
        )


def test_config_loaded_records_its_digest_as_every_other_digest(client: TestClient) -> None:
    [entry] = client.get("/v1/audit/search?event=config.loaded", headers=AUDITOR).json()["entries"]
    assert re.fullmatch(r"sha-256:[A-Za-z0-9_-]{43}", entry["entry"]["detail"]["digest"])
