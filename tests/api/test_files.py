"""The agency's files (`POST /v1/files`) and what the outbox checks of the files a body
names, on both databases; a partner that speaks protocol v1 is sent no attachments."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.test_attachments_inbound import digest
from tests.support.attachment_pair import pdf_bytes, png_bytes
from tests.support.nodes import CLIENT_TOKEN, example_body

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
PDF = pdf_bytes(20_000, seed=9)


def _put(client: TestClient, data: bytes, media_type: str) -> Any:
    return client.post("/v1/files", content=data, headers={**CLIENT, "Content-Type": media_type})


def test_a_file_is_stored_under_its_digest_once(client: TestClient) -> None:
    first = _put(client, PDF, "application/pdf")
    assert first.status_code == 201, first.text
    assert first.json() == {
        "digest": digest(PDF),
        "size": len(PDF),
        "media_type": "application/pdf",
    }
    assert _put(client, PDF, "application/pdf").json() == first.json()


def test_bytes_of_another_type_than_sent_are_refused(client: TestClient) -> None:
    resp = _put(client, png_bytes(), "application/pdf")
    assert (resp.status_code, resp.json()["code"]) == (415, "attachment-media-type")


def test_a_file_without_a_media_type_or_without_bytes_is_refused(client: TestClient) -> None:
    resp = client.post("/v1/files", content=PDF, headers=CLIENT)
    assert (resp.status_code, resp.json()["code"]) == (415, "unsupported-media-type")
    resp = _put(client, b"", "application/pdf")
    assert (resp.status_code, resp.json()["code"]) == (422, "invalid-parameters")


def _statistics_with(named: dict[str, Any]) -> dict[str, Any]:
    body = example_body("statistics.migration-flows")
    del body["observations"]
    return {"to": "UZ:MIA", "type": "statistics.migration-flows", "agreement": "kz-uz-2019",
            "purpose": "statistics", "body": {**body, "attachments": [named]}}  # fmt: skip


def test_a_partner_without_attachments_is_sent_none(client: TestClient) -> None:
    # UZ:MIA's configuration has no `attachments` block: it speaks v1 to this node.
    named = {"name": "observations.json", "media_type": "application/json",
             "size": len(PDF), "digest": digest(PDF)}  # fmt: skip
    resp = client.post("/v1/outbox", json=_statistics_with(named), headers=CLIENT)
    assert (resp.status_code, resp.json()["code"]) == (403, "attachments-not-allowed")
