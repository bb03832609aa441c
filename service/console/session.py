"""Console sessions and CSRF tokens: pure values signed with HMAC-SHA256, no I/O.

A session cookie carries the principal's name and role, a fingerprint of the token it
was opened with (replacing or removing the token in the configuration ends the
session), a random session id and its expiry, signed with a key derived from the node's
audit key (so every process of one node accepts it). CSRF tokens are HMACs of the
session id: a page's forms carry one, and a state-changing request without the token of
its own session is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "migex_console"
PRE_COOKIE = "migex_console_pre"
LANG_COOKIE = "migex_console_lang"
_INFO = b"migex console session v1"


def derive_secret(audit_key: Ed25519PrivateKey) -> bytes:
    """A 32-byte MAC key bound to this node's audit key (HKDF-SHA256, own label)."""
    raw = audit_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)


def token_fingerprint(sha256_hex: str) -> str:
    """A short, non-reversible mark of the configured token digest."""
    return hashlib.sha256(b"console:" + sha256_hex.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    fingerprint: str
    sid: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a session key has at least 32 bytes")
        self._secret = secret

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\x00" + data, hashlib.sha256).digest()

    def issue(self, name: str, role: str, fingerprint: str, *, now: float, minutes: int) -> str:
        payload = json.dumps(
            {
                "n": name,
                "r": role,
                "f": fingerprint,
                "s": secrets.token_urlsafe(16),
                "e": int(now) + minutes * 60,
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac('session', payload))}"

    def read(self, value: str | None, *, now: float) -> Session | None:
        """The session in a cookie value, or None if it is malformed, forged or expired."""
        if not value or len(value) > 1024:
            return None
        body, _, mac = value.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac("session", payload)):
            return None
        try:
            data = json.loads(payload)
            session = Session(
                str(data["n"]), str(data["r"]), str(data["f"]), str(data["s"]), int(data["e"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if now < session.expires else None

    def csrf_token(self, sid: str) -> str:
        """The CSRF token of a session (or of a sign-in page's pre-session id)."""
        return _b64(self._mac("csrf", sid.encode()))

    def check_csrf(self, sid: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(
            token.encode(), self.csrf_token(sid).encode()
        )


def new_pre_session_id() -> str:
    return secrets.token_urlsafe(16)
