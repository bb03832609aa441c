"""The forms a private key could take if it leaked into text: PEM, hex, base64."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.protocol.keys import SigningKey
from tests.support.nodes import Federation


def key_forms(key: SigningKey) -> list[str]:
    """Every way the private key's bytes could show up in text."""
    private = key.private
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    if isinstance(private, Ed25519PrivateKey):
        raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        raw = private.private_numbers().private_value.to_bytes(32, "big")
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [
        "PRIVATE KEY-----",
        *body,
        raw.hex(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def leaked(text: str, federation: Federation) -> list[str]:
    return [
        form
        for party in (federation.kz, federation.uz, federation.kg)
        for form in key_forms(party.key)
        if form in text
    ]
