"""A partner whose software uses another JOSE library: joserfc and PyJWT sign messages
the node accepts, and verify the node's receipts."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, OKPKey

from service.protocol import envelope
from service.protocol.keys import private_key_pem
from service.protocol.receipts import message_digest
from tests.support.es256 import low_s, twin
from tests.support.nodes import Federation, envelope_for

JOSE = {"Content-Type": "application/jose"}


def node_jwk(client: TestClient) -> dict[str, Any]:
    keys: list[dict[str, Any]] = client.get("/.well-known/jwks.json").json()["keys"]
    return keys[0]


def payload(federation: Federation, **kw: Any) -> bytes:
    return json.dumps(envelope_for(federation.uz, **kw).to_dict()).encode()


def check_receipt(receipt: dict[str, Any], sent: bytes, sent_payload: bytes) -> None:
    assert receipt["type"] == "receipt"
    assert receipt["reply_to"] == json.loads(sent_payload)["id"]
    assert receipt["body"]["digest"] == message_digest(sent)


def test_joserfc_partner_is_accepted_and_verifies_the_receipt(
    client: TestClient, federation: Federation
) -> None:
    key = OKPKey.import_key(private_key_pem(federation.uz.key.private))
    body = payload(federation)
    header = {"alg": "Ed25519", "kid": federation.uz.kid, "typ": "migex+jws"}
    token = joserfc_jws.serialize_compact(header, body, key, algorithms=["Ed25519"]).encode()
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert resp.status_code == 201, resp.text
    verified = joserfc_jws.deserialize_compact(
        resp.content, OKPKey.import_key(node_jwk(client)), algorithms=["Ed25519"]
    )
    assert verified.protected["typ"] == "migex+jws"
    check_receipt(json.loads(verified.payload), token, body)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_pyjwt_partner_is_accepted_and_verifies_the_receipt(
    client: TestClient, federation: Federation
) -> None:
    body = payload(federation)
    token = (
        jwt.PyJWS()
        .encode(
            body,
            federation.uz.key.private,
            algorithm="EdDSA",
            headers={"kid": federation.uz.kid, "typ": "migex+jws"},
        )
        .encode()
    )
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    assert resp.status_code == 201, resp.text
    public = jwt.PyJWK(node_jwk(client), algorithm="EdDSA").key
    # The node signs receipts with alg "Ed25519" (RFC 9864); PyJWT knows the same
    # signature as "EdDSA", so the check is done on the signing input directly.
    head, claims, signature = resp.content.split(b".")
    public.verify(jwt.utils.base64url_decode(signature), head + b"." + claims)
    check_receipt(envelope.parse_payload(jwt.utils.base64url_decode(claims)).to_dict(), token, body)


def test_es256_partner_signed_with_joserfc_is_accepted(
    client: TestClient, federation: Federation
) -> None:
    body = json.dumps(
        envelope_for(federation.uz).to_dict()
        | {"iss": "KG:SRS"}
        | {"type": "statistics.migration-flows", "purpose": "statistics", "agreement": "kz-kg-2019"}
    ).encode()
    key = ECKey.import_key(private_key_pem(federation.kg.key.private))
    header = {"alg": "ES256", "kid": federation.kg.kid, "typ": "migex+jws"}
    token = low_s(joserfc_jws.serialize_compact(header, body, key, algorithms=["ES256"]).encode())
    resp = client.post("/v1/messages", content=token, headers=JOSE)
    # The signature verifies; the refusal comes from the agreement (not yet in force).
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "agreement"


def _kg_in_force(cfg: dict[str, Any]) -> None:
    next(a for a in cfg["agreements"] if a["id"] == "kz-kg-2019")["in_force"] = "2020-01-01"


def test_the_high_s_twin_of_an_accepted_es256_message_is_refused(
    client_factory: Any, federation: Federation
) -> None:
    client = client_factory(_kg_in_force)
    env = envelope_for(
        federation.kg,
        msg_type="statistics.migration-flows",
        agreement="kz-kg-2019",
        purpose="statistics",
    )
    genuine = federation.kg.sign(env)
    first = client.post("/v1/messages", content=genuine, headers=JOSE)
    assert first.status_code == 201, first.text
    forged = client.post("/v1/messages", content=twin(genuine), headers=JOSE)
    assert forged.status_code == 401, forged.text
    assert forged.json()["code"] == "bad-signature"
    again = client.post("/v1/messages", content=genuine, headers=JOSE)
    assert again.status_code == 200, again.text
    assert again.content == first.content
