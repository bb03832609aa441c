"""The completion post of a message with attachments (docs/protocol.md, 'The transfer',
step 5), on both databases: with the message's upload token and the bytes that await
their files, the body is not validated again (it was at the first post, whose warnings
are the ones recorded), while every other check is run again as of now; without the
token, with another one, or with other bytes, the post is validated in full."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.tables import messages, pending_messages
from service.exchange import inbound
from service.protocol import envelope, jws
from service.records.findings import FieldError
from service.records.registry import Validated
from tests.api.test_attachments_inbound import LIMITS as ATTACHMENT_LIMITS
from tests.api.test_attachments_inbound import PDF, _limits, _signed, _upload, item
from tests.api.test_messages import JOSE, audit_entries, node_of, post
from tests.support.nodes import Federation, envelope_for

WARNING = "/body/person/identifiers/0/value"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types of the bodies validated on the inbound path; each gets one warning."""
    seen: list[str] = []
    original = inbound.validate_body

    def counted(msg_type: str, body: dict[str, Any], **kw: Any) -> Validated:
        seen.append(msg_type)
        validated = original(msg_type, body, **kw)
        return Validated(validated.model, [FieldError(WARNING, "a caution")])

    monkeypatch.setattr(inbound, "validate_body", counted)
    return seen


@pytest.fixture
def client(client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient]) -> TestClient:
    return client_factory(_limits(ATTACHMENT_LIMITS))


def _with_token(upload_token: str) -> dict[str, str]:
    return {**JOSE, "Authorization": f"Bearer {upload_token}"}


def _uploaded(client: TestClient, token: bytes) -> dict[str, Any]:
    first = post(client, token)
    assert first.status_code == 202, first.text
    offer: dict[str, Any] = first.json()
    assert _upload(client, offer, 0, PDF).status_code == 204
    return offer


def test_the_completion_post_with_the_upload_token_is_not_validated_again(
    client: TestClient, federation: Federation, validations: list[str]
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _uploaded(client, token)
    assert len(validations) == 1

    accepted = post(client, token, _with_token(offer["upload_token"]))
    assert accepted.status_code == 201, accepted.text
    assert len(validations) == 1
    # The warnings found at the first post are those of the accepted entry.
    [entry] = [e for e in audit_entries(client) if e["event"] == "message.accepted"]
    assert entry["detail"]["warnings"] == [WARNING]
    assert [a["size"] for a in entry["detail"]["attachments"]] == [len(PDF)]
    again = post(client, token, _with_token(offer["upload_token"]))
    assert (again.status_code, again.content) == (200, accepted.content)


@pytest.mark.parametrize("header", [None, "x" * 43], ids=["no-token", "another-token"])
def test_a_completion_post_without_the_right_token_is_validated_as_any(
    client: TestClient, federation: Federation, validations: list[str], header: str | None
) -> None:
    token = _signed(federation, [item(PDF)])
    _uploaded(client, token)
    accepted = post(client, token, None if header is None else _with_token(header))
    assert accepted.status_code == 201, accepted.text
    assert len(validations) == 2
    [entry] = [e for e in audit_entries(client) if e["event"] == "message.accepted"]
    assert entry["detail"]["warnings"] == [WARNING]


def test_a_token_with_other_bytes_under_the_same_id_is_validated_and_refused_as_conflict(
    client: TestClient, federation: Federation, validations: list[str]
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _uploaded(client, token)
    sent = envelope.parse_payload(jws.parse_compact(token).payload)
    body = {**sent.body, "attachments": [item(PDF, name="other.pdf")]}
    other = federation.uz.sign(dataclasses.replace(sent, body=body))
    resp = post(client, other, _with_token(offer["upload_token"]))
    assert (resp.status_code, resp.json()["code"]) == (409, "conflict")
    assert len(validations) == 2


def test_an_upload_token_on_a_message_without_files_is_ignored(
    client: TestClient, federation: Federation, validations: list[str]
) -> None:
    resp = post(client, federation.uz.sign(envelope_for(federation.uz)), _with_token("x" * 43))
    assert resp.status_code == 201, resp.text
    assert len(validations) == 1


def revoked_key(federation: Federation) -> Callable[[dict[str, Any]], None]:
    """The configuration change that withdraws the key UZ signed with (another replaces it)."""

    def revoked(cfg: dict[str, Any]) -> None:
        _limits(ATTACHMENT_LIMITS)(cfg)
        uz = federation.partner(cfg, "UZ:MIA")
        other = {**federation.kg.key.public().jwk(), "kid": "UZ:MIA#2026-12"}
        uz["keys"] = [{"kid": "UZ:MIA#2026-12", "jwk": other, "algs": ["ES256"]}]

    return revoked


def test_the_completion_post_of_a_revoked_key_is_refused(
    client: TestClient,
    client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient],
    federation: Federation,
    validations: list[str],
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _uploaded(client, token)
    restarted = client_factory(revoked_key(federation))
    resp = post(restarted, token, _with_token(offer["upload_token"]))
    assert (resp.status_code, resp.json()["code"]) == (401, "unknown-key")
    with node_of(restarted).engines.reader.connect() as conn:
        assert conn.execute(select(messages.c.pk)).first() is None
        assert conn.execute(select(pending_messages.c.digest)).first() is not None


def test_a_pending_row_without_warnings_is_validated_at_its_completion(
    client: TestClient, federation: Federation, validations: list[str]
) -> None:
    # A row kept from before its warnings were recorded (migration 0011) says nothing
    # of its body's warnings: its completion post is validated again.
    token = _signed(federation, [item(PDF)])
    offer = _uploaded(client, token)
    with node_of(client).engines.writer.begin() as conn:
        conn.execute(pending_messages.update().values(warnings=None))
    accepted = post(client, token, _with_token(offer["upload_token"]))
    assert accepted.status_code == 201, accepted.text
    assert len(validations) == 2
