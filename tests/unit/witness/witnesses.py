"""Fake witnesses behind an httpx.MockTransport, for the submitter's unit tests.

Each keeps the latest size and root it cosigned, checks the old size (409 with the
size otherwise) and the consistency proof (422), and cosigns with its own key; a
test can make one down, slow to learn, or dishonest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.checkpoint import parse_checkpoint_text
from service.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from service.audit.note import split_note
from service.witness.cosignature import CosignerKey, cosign
from service.witness.protocol import parse_request, render_size


@dataclass
class FakeWitness:
    name: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    size: int = 0
    root: bytes = EMPTY_ROOT
    down: bool = False
    sign_with: Ed25519PrivateKey | None = None
    sign_other_text: bool = False
    requests: list[tuple[int, int]] = field(default_factory=list)
    now: int = 1_795_000_000

    @property
    def vkey(self) -> str:
        return CosignerKey(self.name, self.key.public_key()).vkey

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        req = parse_request(request.content)
        text, _ = split_note(req.note)
        cp = parse_checkpoint_text(text)
        self.requests.append((req.old_size, cp.size))
        if req.old_size != self.size:
            return httpx.Response(
                409, content=render_size(self.size), headers={"content-type": "text/x.tlog.size"}
            )
        if req.old_size:
            try:
                verify_consistency(self.size, cp.size, self.root, cp.root, req.proof)
            except ProofError:
                return httpx.Response(422, json={"code": "inconsistent"})
        self.size, self.root = cp.size, cp.root
        signed = text.replace("\n", "\n\u2063", 1) if self.sign_other_text else text
        line = cosign(signed, self.name, self.sign_with or self.key, self.now)
        return httpx.Response(200, text=line)


def transport(witnesses: dict[str, FakeWitness]) -> httpx.MockTransport:
    """Routes http://<name>.test/... to the witness of that name."""

    def handler(request: httpx.Request) -> httpx.Response:
        return witnesses[request.url.host.removesuffix(".test")].handle(request)

    return httpx.MockTransport(handler)


def policy_text(witnesses: dict[str, FakeWitness], quorum: int = 2) -> str:
    lines = [f"witness {n} {w.vkey} http://{n}.test/v1/witness" for n, w in witnesses.items()]
    return "\n".join(
        [*lines, f"group all-partners {quorum} {' '.join(witnesses)}", "quorum all-partners", ""]
    )
