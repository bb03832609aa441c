"""`migex send`: sign and post one message (partner integration testing), or queue one
through a node's outbox from its configuration (operators)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.exchange.outbound import OutboundRequest, new_envelope
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.keys import SigningKey, public_key_from_jwk
from service.protocol.problems import Problem


@dataclass(frozen=True)
class Draft:
    """What the file and flags say about the message to send."""

    to: str
    type: str
    agreement: str
    purpose: str
    body: dict[str, Any]
    reply_to: str | None


def read_draft(
    path: Path,
    *,
    to: str | None,
    msg_type: str | None,
    agreement: str | None,
    purpose: str | None,
    reply_to: str | None,
) -> Draft:
    """The file holds either a bare body (flags give the rest) or an object with a `body`
    and any of `to`/`aud`, `type`, `agreement`, `purpose`, `reply_to`; flags win."""
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    if isinstance(data.get("body"), dict):
        body = data["body"]
        meta = data
    else:
        body, meta = data, {}

    def pick(flag: str | None, *names: str) -> str | None:
        if flag is not None:
            return flag
        for name in names:
            if isinstance(meta.get(name), str):
                return str(meta[name])
        return None

    values = {
        "to": pick(to, "to", "aud"),
        "type": pick(msg_type, "type"),
        "agreement": pick(agreement, "agreement"),
        "purpose": pick(purpose, "purpose"),
    }
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError("missing " + ", ".join(missing) + ": give them as options or in the file")
    return Draft(
        str(values["to"]),
        str(values["type"]),
        str(values["agreement"]),
        str(values["purpose"]),
        body,
        pick(reply_to, "reply_to"),
    )


def sign_draft(
    draft: Draft, key: SigningKey, *, now: float, alg: str | None = None
) -> tuple[Envelope, bytes]:
    request = OutboundRequest(
        draft.to, draft.type, draft.agreement, draft.purpose, draft.body, draft.reply_to
    )
    env = new_envelope(request, iss=key.kid.split("#", 1)[0], body=draft.body, now=now)
    return env, jws.sign_compact(key, envelope.encode_payload(env), alg=alg)


def post_signed(
    base_url: str, token: bytes, *, transport: httpx.BaseTransport | None = None
) -> tuple[int, dict[str, Any]]:
    """POST a signed message; return the status and a printable result.

    The receipt's signature is checked against the node's published JWK Set (fetched,
    not pinned: good for testing an integration, not for production trust)."""
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as client:
        resp = client.post(
            "/v1/messages", content=token, headers={"Content-Type": "application/jose"}
        )
        if resp.status_code not in (200, 201):
            try:
                return resp.status_code, {"problem": resp.json()}
            except ValueError:
                return resp.status_code, {"error": resp.text[:500]}
        parsed = jws.parse_compact(resp.content)
        keys = client.get("/.well-known/jwks.json").json().get("keys", [])
        match = [k for k in keys if k.get("kid") == parsed.kid]
        verified = "no published key with that kid"
        if match:
            try:
                jws.verify(parsed, public_key_from_jwk(match[0]))
                verified = "signature verified against the node's published key"
            except Problem as exc:
                verified = f"SIGNATURE INVALID: {exc.detail}"
        receipt = envelope.parse_payload(parsed.payload).to_dict()
        return resp.status_code, {"receipt": receipt, "receipt_signature": verified}


def wait_for(
    check: Callable[[], dict[str, Any]], *, timeout: float, interval: float = 0.5
) -> dict[str, Any]:
    """Poll `check` until its status is final or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        status = check()
        if status["status"] in ("delivered", "failed", "refused") or time.monotonic() >= deadline:
            return status
        time.sleep(interval)
