"""The sender's completion post (docs/protocol.md, 'The transfer', step 5): once the
partner holds the files, the same bytes go again with the upload token, so that the
partner takes them without validating their body again; any other post goes without
one. A sent copy's envelope is parsed once, however often a delivery reads it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.exchange.attempts import SignedCopy
from service.protocol import envelope
from tests.unit.exchange.partner import FakePartner
from tests.unit.exchange.sender import Sender


def _posted(sender: Sender, partner: FakePartner, upload_token: str | None) -> list[str | None]:
    """The Authorization headers of the posts one `_post` of a queued message made."""
    message_id = sender.queue()
    [row] = sender.copies(message_id)
    copy = SignedCopy(row["version"], row["iat"], row["digest"], row["jws"])
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return partner.handle(request)

    worker = sender.worker(httpx.MockTransport(handle))
    to = sender.node.registry.partner("UZ:MIA")
    assert to is not None
    pk = sender.pk(message_id)
    result = asyncio.run(worker._post(to, copy, pk, upload_token=upload_token))
    assert result.outcome == "delivered", result
    return seen


@pytest.mark.parametrize(("token", "header"), [("T" * 43, "Bearer " + "T" * 43), (None, None)])
def test_only_the_completion_post_carries_the_upload_token(
    sender: Sender, partner: FakePartner, token: str | None, header: str | None
) -> None:
    assert _posted(sender, partner, token) == [header]


def test_a_copys_envelope_is_parsed_once(sender: Sender, monkeypatch: pytest.MonkeyPatch) -> None:
    [row] = sender.copies(sender.queue())
    copy = SignedCopy(row["version"], row["iat"], row["digest"], row["jws"])
    calls: list[bytes] = []
    original = envelope.parse_payload

    def counted(payload: bytes, **kw: object) -> envelope.Envelope:
        calls.append(payload)
        return original(payload)

    monkeypatch.setattr(envelope, "parse_payload", counted)
    assert copy.env is copy.env
    assert copy.env.id == original(calls[0]).id
    assert len(calls) == 1
