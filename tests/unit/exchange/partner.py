"""A partner node behind `httpx.MockTransport`, for delivery tests.

It does what a real partner does with a message: checks the JWS against the sender's
pinned public key, the audience and the clock skew, stores it once per id, and
answers with a receipt signed by its own key (201 the first time, 200 with the same
receipt for the same bytes again, 409 for the same id with other bytes). Tests
script other answers for the next posts with `then(...)`: refusals, server errors,
lost responses and forged receipts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.keys import PublicKey
from service.protocol.problems import Problem
from service.protocol.receipts import message_digest, receipt_envelope
from tests.support.nodes import Party

JOSE = {"Content-Type": "application/jose"}
SKEW = 300

Answer = Callable[["FakePartner", bytes, httpx.Request], httpx.Response]


@dataclass
class FakePartner:
    me: Party
    sender_key: PublicKey
    clock: Callable[[], float]
    posts: list[bytes] = field(default_factory=list)
    accepted: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    script: list[Answer] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def then(self, *answers: Answer) -> None:
        """Answer the next posts with these, in order; afterwards answer honestly."""
        self.script.extend(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/messages"
        assert request.headers["content-type"] == "application/jose"
        token = request.content
        self.posts.append(token)
        if self.script:
            return self.script.pop(0)(self, token, request)
        return self.accept(token)

    def posted_ids(self) -> Counter[str]:
        return Counter(envelope_of(token).id for token in self.posts)

    def handle_honestly(self, token: bytes, _request: httpx.Request) -> httpx.Response:
        """A scripted answer that is the honest one (to script later posts)."""
        return self.accept(token)

    def accept(self, token: bytes) -> httpx.Response:
        try:
            parsed = jws.parse_compact(token)
            jws.verify(parsed, self.sender_key)
            env = envelope.parse_payload(parsed.payload)
            if env.aud != self.me.party:
                raise Problem("wrong-audience", f"aud is {env.aud}")
            if abs(env.iat - self.clock()) > SKEW:
                raise Problem("stale", "iat outside the skew")
        except Problem as problem:
            return problem_response(problem.status, problem.code)
        digest = message_digest(token)
        if env.id in self.accepted:
            seen, receipt = self.accepted[env.id]
            if seen != digest:
                return problem_response(409, "conflict")
            return httpx.Response(200, content=receipt, headers=JOSE)
        receipt = self.receipt_for(env, digest)
        self.accepted[env.id] = (digest, receipt)
        return httpx.Response(201, content=receipt, headers=JOSE)

    def receipt_for(self, env: Envelope, digest: str, *, signer: Party | None = None) -> bytes:
        by = signer or self.me
        receipt = receipt_envelope(
            received=env,
            node_party=self.me.party,
            message_id="01890a5d-ac96-774b-bcce-b302099a8057",
            iat=int(self.clock()),
            digest=digest,
            audit_index=len(self.accepted),
        )
        return jws.sign_compact(by.key, envelope.encode_payload(receipt))


def envelope_of(token: bytes) -> Envelope:
    return envelope.parse_payload(jws.parse_compact(token).payload)


def problem_response(
    status: int, code: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    doc = {"type": f"urn:migex:problem:{code}", "title": code, "status": status, "code": code}
    return httpx.Response(
        status,
        content=json.dumps(doc).encode(),
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


# -- scripted answers -----------------------------------------------------------------
def refuse(status: int, code: str) -> Answer:
    return lambda _partner, _token, _request: problem_response(status, code)


def unavailable(status: int = 503, retry_after: str | None = None) -> Answer:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    code = "rate-limited" if status == 429 else "unavailable"
    return lambda _partner, _token, _request: problem_response(status, code, headers)


def connection_refused(
    _partner: FakePartner, _token: bytes, request: httpx.Request
) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def accept_then_lose_response(
    partner: FakePartner, token: bytes, request: httpx.Request
) -> httpx.Response:
    """The partner stores the message, but its answer never arrives."""
    partner.accept(token)
    raise httpx.ReadTimeout("timed out", request=request)


def receipt_with_wrong_digest(
    partner: FakePartner, token: bytes, _request: httpx.Request
) -> httpx.Response:
    receipt = partner.receipt_for(envelope_of(token), message_digest(token + b"x"))
    return httpx.Response(201, content=receipt, headers=JOSE)


def receipt_signed_by(other: Party) -> Answer:
    def answer(partner: FakePartner, token: bytes, _request: httpx.Request) -> httpx.Response:
        receipt = partner.receipt_for(envelope_of(token), message_digest(token), signer=other)
        return httpx.Response(201, content=receipt, headers=JOSE)

    return answer


def garbage_receipt(
    _partner: FakePartner, _token: bytes, _request: httpx.Request
) -> httpx.Response:
    return httpx.Response(201, content=b"accepted, trust me", headers=JOSE)
