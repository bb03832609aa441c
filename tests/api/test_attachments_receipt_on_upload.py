"""The receipt in the answer to the upload that stores a message's last missing file
(docs/protocol.md, 'The transfer', step 4), on both databases: asked for with `Prefer:
return=representation`, that upload accepts the message in the commit of the file's
entry and answers `200` with the receipt, so the completion post is not needed (and is
answered `200` with the same receipt if it comes). Without the preference, before the
last file, or when the message cannot be taken then, the upload answers `204` as in
tus, writes the file's entry alone, and the completion post answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db.tables import messages, pending_messages
from service.exchange import awaiting
from service.protocol import jws
from service.protocol.problems import Problem
from tests.api.test_attachments_completion import WARNING, _with_token, revoked_key, validations
from tests.api.test_attachments_inbound import (
    LIMITS,
    PDF,
    _count,
    _limits,
    _signed,
    _upload,
    digest,
    item,
)
from tests.api.test_messages import audit_entries, post
from tests.support.attachment_pair import png_bytes
from tests.support.nodes import Federation

__all__ = ["validations"]  # the fixture, used here by name

PREFER = {"Prefer": "return=representation"}


@pytest.fixture
def client(client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient]) -> TestClient:
    return client_factory(_limits(LIMITS))


def _patch(
    client: TestClient, offer: dict[str, Any], index: int, data: bytes, **headers: str
) -> Any:
    return _upload(client, offer, index, data, headers=headers)


def _offer(client: TestClient, token: bytes) -> dict[str, Any]:
    first = post(client, token)
    assert first.status_code == 202, first.text
    offer: dict[str, Any] = first.json()
    return offer


def _events(client: TestClient) -> list[dict[str, Any]]:
    """The entries of files and messages, oldest first (but the awaiting ones)."""
    found = [
        e
        for e in audit_entries(client)
        if e["event"].startswith(("attachment.", "message."))
        and e["event"] != "message.awaiting-attachments"
    ]
    return sorted(found, key=lambda e: int(e["index"]))


def test_the_upload_of_the_last_file_answers_with_the_receipt(
    client: TestClient, federation: Federation, validations: list[str]
) -> None:
    token = _signed(federation, [item(PDF), item(png_bytes(), "image/png")])
    offer = _offer(client, token)

    first = _patch(client, offer, 0, PDF, **PREFER)
    # The PNG is still missing: an upload answered as in tus, nothing accepted.
    assert (first.status_code, first.content) == (204, b"")
    assert "preference-applied" not in first.headers
    assert _count(client, messages) == 0

    last = _patch(
        client, offer, 1, png_bytes(), **{"Prefer": "respond-async, return=representation"}
    )
    assert last.status_code == 200, last.text
    assert last.headers["content-type"] == "application/jose"
    assert last.headers["preference-applied"] == "return=representation"
    assert last.headers["upload-offset"] == str(len(png_bytes()))
    receipt = json.loads(jws.parse_compact(last.content).payload)["body"]
    assert receipt["attachments"] == [
        {"digest": digest(PDF), "size": len(PDF), "status": "stored"},
        {"digest": digest(png_bytes()), "size": len(png_bytes()), "status": "stored"},
    ]
    assert (_count(client, messages), _count(client, pending_messages)) == (1, 0)
    # Validated once, at the first post; the warnings found then are those recorded.
    assert len(validations) == 1
    events = _events(client)
    assert [e["event"] for e in events] == [
        "attachment.stored",
        "attachment.stored",
        "message.accepted",
    ]
    # The last file's entry and the acceptance are written in one commit, in that order.
    assert events[2]["index"] == events[1]["index"] + 1
    assert events[1]["detail"]["attachment"] == digest(png_bytes())
    assert events[2]["detail"]["warnings"] == [WARNING]
    assert receipt["audit_index"] == events[2]["index"]

    # A completion post still gets the same receipt (200), and a post without the token too.
    again = post(client, token, _with_token(offer["upload_token"]))
    assert (again.status_code, again.content) == (200, last.content)
    assert post(client, token).content == last.content
    assert _count(client, messages) == 1


def test_without_the_preference_the_upload_answers_204_and_the_post_accepts(
    client: TestClient, federation: Federation
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _offer(client, token)
    done = _patch(client, offer, 0, PDF)
    assert (done.status_code, done.content) == (204, b"")
    assert _count(client, messages) == 0
    assert [e["event"] for e in _events(client)] == ["attachment.stored"]
    accepted = post(client, token, _with_token(offer["upload_token"]))
    assert accepted.status_code == 201, accepted.text


def test_a_message_refused_at_its_last_upload_is_answered_by_its_completion_post(
    client: TestClient, federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _offer(client, token)

    def over_the_limit(*_args: Any) -> None:
        raise Problem("attachment-too-many", "the partner's limits changed")

    monkeypatch.setattr(awaiting, "check_declared", over_the_limit)
    done = _patch(client, offer, 0, PDF, **PREFER)
    # The file is stored and its entry written; the message is not taken, and the
    # upload leaves no refusal of it (the completion post answers and leaves that).
    assert (done.status_code, done.content) == (204, b"")
    assert [e["event"] for e in _events(client)] == ["attachment.stored"]
    assert (_count(client, messages), _count(client, pending_messages)) == (0, 1)

    refused = post(client, token, _with_token(offer["upload_token"]))
    assert (refused.status_code, refused.json()["code"]) == (413, "attachment-too-many")
    assert [e["event"] for e in _events(client)] == ["attachment.stored", "message.refused"]
    monkeypatch.undo()
    accepted = post(client, token, _with_token(offer["upload_token"]))
    assert accepted.status_code == 201, accepted.text


def test_a_revoked_key_takes_no_message_at_the_upload(
    client: TestClient,
    client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient],
    federation: Federation,
) -> None:
    token = _signed(federation, [item(PDF)])
    offer = _offer(client, token)
    restarted = client_factory(revoked_key(federation))
    done = _patch(restarted, offer, 0, PDF, **PREFER)
    assert (done.status_code, done.content) == (204, b"")
    assert _count(restarted, messages) == 0
    resp = post(restarted, token, _with_token(offer["upload_token"]))
    assert (resp.status_code, resp.json()["code"]) == (401, "unknown-key")
