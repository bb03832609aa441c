"""The receiver's side of attachments (docs/protocol.md, 'Attachments (v1.1)'), on both
databases: a message naming files waits (202) until each is uploaded and checked, then
is accepted with a receipt that lists them; each refusal has its own code, and a
refused or broken upload leaves nothing behind but what it could not change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.clock import FixedClock
from service.db.tables import attachments, messages, pending_messages
from service.protocol import jws
from service.protocol.b64 import b64url_encode
from tests.api.test_messages import audit_entries, node_of, post
from tests.support.attachment_pair import pdf_bytes, png_bytes
from tests.support.nodes import Federation, envelope_for, example_body

TYPE = "migration.violation-notice"
EXCHANGE = {"agreement": "kz-uz-2019", "purpose": "illegal-migration-control"}
LIMITS = {
    "max_count": 2,
    "max_bytes": 100_000,
    "max_total_bytes": 150_000,
    "media_types": ["application/pdf", "image/png"],
}
PDF = pdf_bytes(60_000, seed=7)
OTHER_PDF = pdf_bytes(60_000, seed=8)
TUS = {"Tus-Resumable": "1.0.0"}


def digest(data: bytes) -> str:
    return "sha-256:" + b64url_encode(hashlib.sha256(data).digest())


def item(data: bytes, media_type: str = "application/pdf", **kw: Any) -> dict[str, Any]:
    return {"name": "decision.pdf", "media_type": media_type, "size": len(data),
            "digest": digest(data), **kw}  # fmt: skip


def _limits(limits: dict[str, Any] | None) -> Callable[[dict[str, Any]], None]:
    def mutate(cfg: dict[str, Any]) -> None:
        [uz] = [p for p in cfg["partners"] if p["party"] == "UZ:MIA"]
        uz["rules"].append(
            {"id": "uz-in-violation", "direction": "inbound", "types": [TYPE],
             "agreements": ["kz-uz-2019"], "purposes": ["illegal-migration-control"]}
        )  # fmt: skip
        if limits is not None:
            uz["attachments"] = limits

    return mutate


@pytest.fixture
def client(client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient]) -> TestClient:
    return client_factory(_limits(LIMITS))


def _signed(federation: Federation, files: list[dict[str, Any]]) -> bytes:
    body = {**example_body(TYPE), "attachments": files}
    return federation.uz.sign(envelope_for(federation.uz, msg_type=TYPE, body=body, **EXCHANGE))


def _upload(
    client: TestClient,
    offer: dict[str, Any],
    index: int,
    data: bytes,
    offset: int = 0,
    headers: dict[str, str] | None = None,
) -> Any:
    target = offer["attachments"][index]
    return client.patch(
        target["url"],
        content=data,
        headers={**TUS, "Authorization": f"Bearer {offer['upload_token']}",
                 "Upload-Offset": str(offset),
                 "Content-Type": "application/offset+octet-stream", **(headers or {})},
    )  # fmt: skip


def _held(client: TestClient, offer: dict[str, Any], index: int) -> int:
    resp = client.head(
        offer["attachments"][index]["url"],
        headers={**TUS, "Authorization": f"Bearer {offer['upload_token']}"},
    )
    assert resp.status_code == 200, resp.text
    return int(resp.headers["upload-offset"])


def _count(client: TestClient, table: Any) -> int:
    with node_of(client).engines.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_message_waits_for_its_files_then_is_accepted_with_them(
    client: TestClient, federation: Federation
) -> None:
    token = _signed(federation, [item(PDF), item(png_bytes(), "image/png")])
    first = post(client, token)
    assert first.status_code == 202, first.text
    offer = first.json()
    assert offer["status"] == "awaiting-attachments"
    assert [a["offset"] for a in offer["attachments"]] == [0, 0]
    assert _count(client, messages) == 0  # not accepted: not in the inbox, no receipt
    again = post(client, token).json()
    assert again["upload_token"] == offer["upload_token"]

    assert _upload(client, offer, 0, PDF[:1000]).status_code == 204
    assert _held(client, offer, 0) == 1000
    done = _upload(client, offer, 0, PDF[1000:], offset=1000)
    assert (done.status_code, done.headers["upload-offset"]) == (204, str(len(PDF)))
    assert post(client, token).status_code == 202  # the PNG is still missing
    assert _upload(client, offer, 1, png_bytes()).status_code == 204

    accepted = post(client, token)
    assert accepted.status_code == 201, accepted.text
    receipt = jws.parse_compact(accepted.content)
    body = json.loads(receipt.payload)["body"]
    assert body["attachments"] == [
        {"digest": digest(PDF), "size": len(PDF), "status": "stored"},
        {"digest": digest(png_bytes()), "size": len(png_bytes()), "status": "stored"},
    ]
    assert post(client, token).content == accepted.content  # 200, the same receipt
    assert (_count(client, messages), _count(client, attachments)) == (1, 2)
    assert _count(client, pending_messages) == 0
    [entry] = [e for e in audit_entries(client) if e["event"] == "message.accepted"]
    assert [a["digest"] for a in entry["detail"]["attachments"]] == [
        digest(PDF),
        digest(png_bytes()),
    ]


@pytest.mark.parametrize(
    ("limits", "files", "status", "code"),
    [
        (None, [item(PDF)], 403, "attachments-not-allowed"),
        (LIMITS, [item(PDF), item(OTHER_PDF), item(png_bytes(), "image/png")], 413,
         "attachment-too-many"),
        ({**LIMITS, "max_bytes": 50_000}, [item(PDF)], 413, "attachment-too-large"),
        ({**LIMITS, "max_total_bytes": 100_000}, [item(PDF), item(OTHER_PDF)], 413,
         "attachment-too-large"),
        (LIMITS, [item(PDF, "image/jpeg")], 415, "attachment-media-type"),
    ],
    ids=["not-allowed", "too-many", "too-large", "too-large-in-all", "media-type-not-allowed"],
)  # fmt: skip
def test_declarations_outside_the_partners_limits_are_refused_before_any_byte(
    client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient],
    federation: Federation,
    limits: dict[str, Any] | None,
    files: list[dict[str, Any]],
    status: int,
    code: str,
) -> None:
    client = client_factory(_limits(limits))
    resp = post(client, _signed(federation, files))
    assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
    assert _count(client, pending_messages) == 0
    refused = [e for e in audit_entries(client) if e["event"] == "message.refused"]
    assert [e["code"] for e in refused] == [code]


def _offer(client: TestClient, federation: Federation, files: list[dict[str, Any]]) -> Any:
    resp = post(client, _signed(federation, files))
    assert resp.status_code == 202, resp.text
    return resp.json()


def test_bytes_of_another_type_than_declared_are_refused_and_discarded(
    client: TestClient, federation: Federation
) -> None:
    png = png_bytes()
    offer = _offer(client, federation, [item(png, "application/pdf")])
    resp = _upload(client, offer, 0, png)
    assert (resp.status_code, resp.json()["code"]) == (415, "attachment-media-type")
    assert _held(client, offer, 0) == 0  # discarded whole: the sender may start again
    refused = [e for e in audit_entries(client) if e["event"] == "attachment.refused"]
    assert [e["code"] for e in refused] == ["attachment-media-type"]


def test_bytes_with_another_digest_are_refused_and_discarded(
    client: TestClient, federation: Federation
) -> None:
    offer = _offer(client, federation, [item(PDF)])
    resp = _upload(client, offer, 0, OTHER_PDF)  # same size, other bytes
    assert (resp.status_code, resp.json()["code"]) == (422, "attachment-digest")
    assert _held(client, offer, 0) == 0
    assert _upload(client, offer, 0, PDF).status_code == 204  # the right bytes, from 0


def test_bytes_past_the_declared_size_are_refused_and_not_kept(
    client: TestClient, federation: Federation
) -> None:
    offer = _offer(client, federation, [item(PDF)])
    assert _upload(client, offer, 0, PDF[:100]).status_code == 204
    resp = _upload(client, offer, 0, PDF[100:] + b"extra", offset=100)
    assert (resp.status_code, resp.json()["code"]) == (422, "attachment-size")
    assert _held(client, offer, 0) == 100


def test_an_offset_other_than_the_held_one_is_answered_with_the_held_one(
    client: TestClient, federation: Federation
) -> None:
    offer = _offer(client, federation, [item(PDF)])
    assert _upload(client, offer, 0, PDF[:500]).status_code == 204
    resp = _upload(client, offer, 0, PDF[700:], offset=700)
    assert (resp.status_code, resp.json()["code"]) == (409, "upload-offset")
    assert resp.headers["upload-offset"] == "500"


def test_an_upload_without_the_messages_token_is_refused(
    client: TestClient, federation: Federation
) -> None:
    offer = _offer(client, federation, [item(PDF)])
    resp = _upload(client, {**offer, "upload_token": "x" * 43}, 0, PDF)
    assert (resp.status_code, resp.json()["code"]) == (401, "unauthorized")
    assert _held(client, offer, 0) == 0


def test_a_message_whose_window_closed_is_refused_as_incomplete(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = post(client, token).json()
    clock.advance(86_401)
    resp = _upload(client, offer, 0, PDF)
    assert (resp.status_code, resp.json()["code"]) == (410, "attachment-incomplete")
    # The message is stale by now as well; a re-post of it is refused either way.
    assert post(client, token).status_code in (410, 422)


def test_a_message_awaiting_its_files_longer_than_the_skew_is_still_accepted(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    # A large file on a slow link may take longer than the clock skew (300 s) to upload.
    token = _signed(federation, [item(PDF)])
    offer = post(client, token).json()
    clock.advance(1800)
    assert _upload(client, offer, 0, PDF).status_code == 204
    assert post(client, token).status_code == 201


def test_a_stale_message_that_awaits_nothing_is_refused_as_stale(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    token = _signed(federation, [item(PDF)])
    clock.advance(1800)
    resp = post(client, token)
    assert (resp.status_code, resp.json()["code"]) == (422, "stale")
    assert _count(client, pending_messages) == 0


def test_a_stale_message_whose_body_also_fails_the_schema_is_refused_as_stale(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    # The clock skew is checked before the schema, with attachments as without.
    body = {**example_body(TYPE), "attachments": [item(PDF)], "not-in-the-schema": 1}
    token = federation.uz.sign(envelope_for(federation.uz, msg_type=TYPE, body=body, **EXCHANGE))
    assert post(client, token).json()["code"] == "schema"
    clock.advance(1800)
    resp = post(client, token)
    assert (resp.status_code, resp.json()["code"]) == (422, "stale")
    assert _count(client, pending_messages) == 0
