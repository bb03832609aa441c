"""What a refusal leaves in the audit log: nothing an unproven sender chose, as text.

The log is permanent, so an unauthenticated POST must not be able to write its own
words into it (docs/protocol.md, clarification 3).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.tables import audit_entries
from service.exchange.inbound import text_digest
from service.exchange.refusals import UNKNOWN_SOURCE, source_digest
from service.protocol import envelope, jws
from service.runtime import Node
from tests.support.nodes import Federation, envelope_for

JOSE = {"Content-Type": "application/jose"}
MARK = "ZHAKSYBEKOVA AIGERIM 910314401230"
# The test client's peer is "testclient", which is no address.
SOURCE = source_digest(UNKNOWN_SOURCE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(federation: Federation, header: dict[str, Any], payload: bytes | None = None) -> bytes:
    body = payload if payload is not None else envelope.encode_payload(envelope_for(federation.uz))
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(body)}".encode()
    signature = jws.sign_raw(federation.uz.key.private, "Ed25519", signing_input)
    return signing_input + b"." + _b64(signature).encode()


def _leaves(client: TestClient) -> list[bytes]:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    with node.engines.reader.connect() as conn:
        rows = conn.execute(select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx))
        return [bytes(r.leaf_data) for r in rows]


def _refusals(client: TestClient) -> list[dict[str, Any]]:
    entries = [json.loads(leaf) for leaf in _leaves(client)]
    return [e for e in entries if e["event"] == "message.refused"]


def test_an_unknown_kid_is_recorded_as_its_digest_only(
    client: TestClient, federation: Federation
) -> None:
    kid = f"{MARK} born 1991-03-14"
    resp = client.post("/v1/messages", content=_token(federation, _header(kid)), headers=JOSE)
    assert resp.status_code == 401, resp.text
    (refusal,) = _refusals(client)
    assert refusal["code"] == "unknown-key"
    assert refusal["detail"] == {
        "status": 401,
        "claimed_kid_digest": text_digest(kid),
        "source": SOURCE,
    }
    assert text_digest(kid).startswith("sha-256:")
    assert all(MARK.encode() not in leaf for leaf in _leaves(client))


def test_a_kid_of_key_id_form_that_no_partner_has_is_a_digest(
    client: TestClient, federation: Federation
) -> None:
    kid = "UZ:MIA#AIGERIM-910314401230"
    client.post("/v1/messages", content=_token(federation, _header(kid)), headers=JOSE)
    (refusal,) = _refusals(client)
    assert refusal["detail"] == {
        "status": 401,
        "claimed_kid_digest": text_digest(kid),
        "source": SOURCE,
    }


def test_a_pinned_kid_is_kept_as_text(client: TestClient, federation: Federation) -> None:
    head, payload, sig = federation.uz.sign(envelope_for(federation.uz)).split(b".")
    flipped = bytearray(base64.urlsafe_b64decode(sig + b"=="))
    flipped[0] ^= 1
    token = b".".join([head, payload, _b64(bytes(flipped)).encode()])
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 401
    (refusal,) = _refusals(client)
    assert refusal["code"] == "bad-signature"
    assert refusal["detail"] == {
        "status": 401,
        "claimed_kid": federation.uz.kid,
        "source": SOURCE,
    }


def test_a_revoked_kid_is_kept_as_text(
    federation: Federation, client_factory: Callable[..., TestClient]
) -> None:
    def revoke(cfg: dict[str, Any]) -> None:
        key = federation.partner(cfg, "UZ:MIA")["keys"][0]
        key.update(revoked=True, revoked_at="2026-05-01")

    client = client_factory(revoke)
    token = federation.uz.sign(envelope_for(federation.uz))
    assert client.post("/v1/messages", content=token, headers=JOSE).status_code == 401
    (refusal,) = _refusals(client)
    assert refusal["detail"]["claimed_kid"] == federation.uz.kid


def _header(kid: str, **members: Any) -> dict[str, Any]:
    return {"alg": "Ed25519", "kid": kid, "typ": "migex+jws", **members}


def _hostile_tokens(federation: Federation) -> list[bytes]:
    """Every place of a token an unproven sender could write text into."""
    uz = federation.uz
    named = envelope_for(uz, msg_id="0f6f5d6e-3b1c-4c8a-9d2e-7a1b2c3d4e5f")
    payload = json.loads(envelope.encode_payload(named))
    forged_iss = dict(payload, iss="KG:SRS")
    bad_envelope = dict(payload, purpose=MARK, agreement=MARK, type=MARK, id=MARK)
    return [
        _token(federation, _header(MARK)),
        _token(federation, _header("K" * 129 + MARK)),
        _token(federation, _header(uz.kid, alg=MARK)),
        _token(federation, _header(uz.kid, typ=MARK)),
        _token(federation, _header(uz.kid, cty=MARK)),
        _token(federation, {MARK: uz.kid}),
        _token(federation, _header(uz.kid), MARK.encode()),
        _token(federation, _header(uz.kid), json.dumps(bad_envelope).encode()),
        _token(federation, _header(uz.kid), json.dumps(forged_iss).encode()),
        # A valid signature by a pinned key over an envelope another party "sent".
        _token(federation, _header(MARK + "#1"), json.dumps(payload | {"iss": MARK}).encode()),
        f"{_b64(MARK.encode())}.{_b64(MARK.encode())}.{_b64(MARK.encode())}".encode(),
        MARK.encode(),
    ]


def test_no_text_an_unproven_sender_chose_enters_the_log(
    client: TestClient, federation: Federation
) -> None:
    tokens = _hostile_tokens(federation)
    for token in tokens:
        resp = client.post("/v1/messages", content=token, headers=JOSE)
        assert 400 <= resp.status_code < 500, resp.text
    other_type = client.post("/v1/messages", content=MARK.encode(), headers={"Content-Type": MARK})
    assert other_type.status_code == 415
    refusals = _refusals(client)
    assert len(refusals) == len(tokens) + 1
    for leaf in _leaves(client):
        assert MARK.encode() not in leaf
        assert b"0f6f5d6e" not in leaf
    for refusal in refusals:
        assert refusal["from"] is refusal["message_id"] is refusal["type"] is None
        assert set(refusal["detail"]) <= {"status", "claimed_kid", "claimed_kid_digest", "source"}
        assert refusal["detail"].get("source", SOURCE) == SOURCE


@pytest.mark.parametrize("kid", [MARK, "UZ:MIA#2026-01 ", "uz:mia#2026-01", "UZ:MIA#"])
def test_only_a_pinned_kid_of_key_id_form_is_known(federation: Federation, kid: str) -> None:
    from service.config import load_config
    from service.config.build import registry_from_config
    from service.exchange.inbound import Facts

    registry = registry_from_config(load_config(federation.write_config()))
    facts = Facts(digest=None)
    facts.claim_kid(kid, registry)
    assert not facts.known_kid
    facts.claim_kid(federation.uz.kid, registry)
    assert facts.known_kid
