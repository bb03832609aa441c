"""The sender's side of the receipt on the last upload (docs/protocol.md, 'The
transfer', step 4): every upload asks for it (`Prefer: return=representation`); a
receipt in the answer that stored the last file ends the delivery without a completion
post, once checked as any receipt; a `204`, a receipt that does not answer the message,
or an upload whose answer was lost (the partner no longer awaits the message: `404`)
is followed by the completion post, which gets the receipt."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.attachments.store import FileStore, digest_of
from service.exchange.attempts import AttemptResult, SignedCopy
from service.protocol import envelope, jws
from service.protocol.receipts import message_digest, receipt_envelope
from tests.support.attachment_pair import pdf_bytes
from tests.support.nodes import Federation, envelope_for, example_body
from tests.unit.exchange.partner import JOSE, FakePartner, problem_response
from tests.unit.exchange.sender import Sender

TYPE = "migration.violation-notice"
PDF = pdf_bytes(70_000, seed=3)
DIGEST, _ = digest_of(io.BytesIO(PDF))
TOKEN = "t" * 43
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    files = FileStore(tmp_path / "files")
    files.append("k", 0, [PDF], len(PDF))
    files.complete("k", DIGEST, len(PDF))
    return files


@pytest.fixture
def copy(federation: Federation) -> SignedCopy:
    named = {"name": "decision.pdf", "media_type": "application/pdf", "size": len(PDF)}
    body = {**example_body(TYPE), "attachments": [{**named, "digest": DIGEST}]}
    env = envelope_for(
        federation.kz, aud="UZ:MIA", msg_type=TYPE, purpose="illegal-migration-control",
        body=body,
    )  # fmt: skip
    token = federation.kz.sign(env)
    return SignedCopy(1, env.iat, message_digest(token), token, env)


def _receipt(partner: FakePartner, copy: SignedCopy, *, attachments: bool = True) -> bytes:
    listed = [{"digest": DIGEST, "size": len(PDF)}] if attachments else None
    receipt = receipt_envelope(
        received=copy.env, node_party="UZ:MIA", message_id="01890a5d-ac96-774b-bcce-b302099a8057",
        iat=int(partner.clock()), digest=copy.digest, audit_index=7, attachments=listed,
    )  # fmt: skip
    return jws.sign_compact(partner.me.key, envelope.encode_payload(receipt))


def _offer(copy: SignedCopy) -> httpx.Response:
    url = f"/v1/messages/KZ:MIA/{copy.env.id}/attachments/{DIGEST}"
    return httpx.Response(
        202,
        json={"status": "awaiting-attachments", "upload_token": TOKEN,
              "attachments": [{"digest": DIGEST, "url": url, "offset": 0}]},
    )  # fmt: skip


class Partner:
    """The partner's side, scripted per method; every request is kept."""

    def __init__(self, patch: Handler, head: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.patch, self.head = patch, head
        self.completion: Handler | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.method == "PATCH":
            return self.patch(request)
        if request.method == "HEAD" and self.head is not None:
            return self.head(request)
        if request.method == "POST" and self.completion is not None:
            return self.completion(request)
        raise AssertionError(f"unexpected {request.method} {request.url.path}")

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


def _deliver(sender: Sender, store: FileStore, copy: SignedCopy, partner: Partner) -> AttemptResult:
    async def run() -> AttemptResult:
        async with httpx.MockTransport(partner) as transport:
            worker = sender.worker(transport)
            worker._store = lambda: store
            uz = sender.node.registry.partner("UZ:MIA")
            assert uz is not None
            return await worker._send_attachments(uz, copy, _offer(copy), 0)

    return asyncio.run(run())


def _honest_post(fake: FakePartner, copy: SignedCopy) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.content == copy.jws
        return httpx.Response(200, content=_receipt(fake, copy), headers=JOSE)

    return answer


def test_a_receipt_on_the_last_upload_ends_the_delivery_without_a_post(
    sender: Sender, store: FileStore, copy: SignedCopy
) -> None:
    receipt = _receipt(sender.partner, copy)

    def patch(request: httpx.Request) -> httpx.Response:
        assert request.headers["prefer"] == "return=representation"
        assert request.content == PDF
        headers = {
            **JOSE,
            "Upload-Offset": str(len(PDF)),
            "Preference-Applied": "return=representation",
        }
        return httpx.Response(200, content=receipt, headers=headers)

    partner = Partner(patch)
    result = _deliver(sender, store, copy, partner)
    assert (result.outcome, result.receipt, result.receipt_index) == ("delivered", receipt, 7)
    assert partner.methods() == ["PATCH"]


@pytest.mark.parametrize("answer", ["204", "receipt-without-files"])
def test_without_a_receipt_that_answers_the_message_the_completion_post_follows(
    sender: Sender, store: FileStore, copy: SignedCopy, answer: str
) -> None:
    def patch(_request: httpx.Request) -> httpx.Response:
        held = {"Upload-Offset": str(len(PDF))}
        if answer == "204":
            return httpx.Response(204, headers=held)
        # A receipt that does not list the file as stored is not taken.
        content = _receipt(sender.partner, copy, attachments=False)
        return httpx.Response(200, content=content, headers={**JOSE, **held})

    partner = Partner(patch)
    partner.completion = _honest_post(sender.partner, copy)
    result = _deliver(sender, store, copy, partner)
    assert result.outcome == "delivered"
    assert result.receipt == _receipt(sender.partner, copy)
    assert partner.methods() == ["PATCH", "POST"]


def test_an_upload_whose_answer_was_lost_is_completed_by_the_post(
    sender: Sender, store: FileStore, copy: SignedCopy
) -> None:
    def patch(request: httpx.Request) -> httpx.Response:
        # The partner took the file and the message; the answer never arrives.
        raise httpx.ReadError("connection reset", request=request)

    def head(_request: httpx.Request) -> Any:
        return problem_response(404, "not-found")

    partner = Partner(patch, head)
    partner.completion = _honest_post(sender.partner, copy)
    result = _deliver(sender, store, copy, partner)
    assert result.outcome == "delivered"
    assert partner.methods() == ["PATCH", "HEAD", "POST"]
