"""ES256 signatures and their malleable twins (docs/protocol.md section 2)."""

from __future__ import annotations

from service.protocol.b64 import b64url_decode, b64url_encode
from service.protocol.jws import P256_HALF_ORDER, P256_ORDER


def split_signature(token: bytes) -> tuple[bytes, int, int]:
    """The signing input and the (R, S) pair of a compact ES256 token."""
    signing_input, _, signature = token.rpartition(b".")
    raw = b64url_decode(signature)
    return signing_input, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def with_s(token: bytes, s: int) -> bytes:
    signing_input, r, _ = split_signature(token)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + b"." + b64url_encode(raw).encode("ascii")


def twin(token: bytes) -> bytes:
    """The same signature with S replaced by n - S: it verifies under plain ECDSA too."""
    _, _, s = split_signature(token)
    return with_s(token, P256_ORDER - s)


def is_low_s(token: bytes) -> bool:
    return split_signature(token)[2] <= P256_HALF_ORDER


def low_s(token: bytes) -> bytes:
    """The token in the form a migex node accepts: its signature with S <= n/2."""
    return token if is_low_s(token) else twin(token)
