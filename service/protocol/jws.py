"""JWS compact serialization (RFC 7515 section 7.1) as the protocol profiles it.

The protected header holds exactly `alg`, `kid` and `typ` (docs/protocol.md section
2). Algorithms: `Ed25519` (RFC 9864), `EdDSA` with an Ed25519 key (RFC 8037) and
`ES256` with a raw 64-byte R||S signature (RFC 7518 section 3.4) whose S is in the
lower half of the group order (docs/protocol.md section 2: for every ECDSA signature
(R, S) the pair (R, n - S) verifies too, so without this rule anyone holding a
captured message could make a second valid token of it). `parse_compact` checks
syntax and header; `verify` checks the signature against a key the caller chose from
its own configuration, never from the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from service.protocol import ed25519, jsonstrict
from service.protocol.b64 import b64url_decode, b64url_encode
from service.protocol.keys import (
    MAX_KID_LENGTH,
    PrivateKeyType,
    PublicKey,
    PublicKeyType,
    SigningKey,
    algs_for,
)
from service.protocol.problems import Problem

TYP = "migex+jws"
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
SUPPORTED_ALGS = frozenset({"Ed25519", "EdDSA", "ES256"})
EDDSA_ALGS = frozenset({"Ed25519", "EdDSA"})
SIGNATURE_LENGTH = 64
_P256_SCALAR_BYTES = 32
# The order n of the P-256 group (SEC 2 section 2.4.2); S above n/2 is refused.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_HALF_ORDER = P256_ORDER // 2
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True, slots=True)
class ParsedJWS:
    """A syntactically valid JWS with an acceptable header; not yet verified."""

    header: dict[str, str]
    alg: str
    kid: str
    payload: bytes
    signing_input: bytes
    signature: bytes


def _decode_part(part: bytes, name: str) -> bytes:
    try:
        return b64url_decode(part)
    except ValueError as exc:
        raise Problem("malformed", f"JWS {name} is not valid base64url: {exc}") from None


def _as_bytes(token: object) -> bytes:
    if isinstance(token, bytes):
        return token
    if isinstance(token, bytearray | memoryview):
        return bytes(token)
    raise Problem("malformed", "JWS must be bytes")


def _split(token: bytes) -> tuple[bytes, bytes, bytes]:
    if not token.isascii():
        raise Problem("malformed", "JWS contains non-ASCII bytes")
    dots = token.count(b".")
    if dots != 2:
        raise Problem("malformed", f"JWS compact serialization has 3 parts, not {dots + 1}")
    header, payload, signature = token.split(b".")
    if not (header and payload and signature):
        raise Problem("malformed", "JWS has an empty part")
    return header, payload, signature


def _check_header(header: object) -> dict[str, str]:
    if not isinstance(header, dict):
        raise Problem("malformed", "JWS header is not a JSON object")
    if header.keys() != HEADER_MEMBERS:
        extra = sorted(header.keys() - HEADER_MEMBERS)
        missing = sorted(HEADER_MEMBERS - header.keys())
        detail = "; ".join(
            text
            for text in (
                f"members not allowed: {', '.join(extra)}" if extra else "",
                f"members missing: {', '.join(missing)}" if missing else "",
            )
            if text
        )
        raise Problem("bad-header", f"JWS header must hold exactly alg, kid and typ ({detail})")
    for name, value in header.items():
        if not isinstance(value, str):
            raise Problem("bad-header", f"JWS header member {name!r} is not a string")
    if header["typ"] != TYP:
        raise Problem("bad-header", f"JWS header typ must be {TYP!r}")
    if header["alg"] not in SUPPORTED_ALGS:
        raise Problem("bad-header", f"JWS alg {header['alg'][:32]!r} is not supported")
    if not 1 <= len(header["kid"]) <= MAX_KID_LENGTH:
        raise Problem("bad-header", f"JWS kid must have 1 to {MAX_KID_LENGTH} characters")
    return header


def parse_compact(token: bytes) -> ParsedJWS:
    """Split, decode and check a compact JWS; the payload is decoded but not parsed."""
    token = _as_bytes(token)
    header_b64, payload_b64, signature_b64 = _split(token)
    header_json = _decode_part(header_b64, "header")
    payload = _decode_part(payload_b64, "payload")
    signature = _decode_part(signature_b64, "signature")
    header = _check_header(jsonstrict.loads(header_json, max_depth=4))
    return ParsedJWS(
        header=header,
        alg=header["alg"],
        kid=header["kid"],
        payload=payload,
        signing_input=token[: len(header_b64) + 1 + len(payload_b64)],
        signature=signature,
    )


def verify_raw(public: PublicKeyType, alg: str, signing_input: bytes, signature: bytes) -> None:
    """Check `signature` over `signing_input`; raise `Problem("bad-signature")` if it fails."""
    if len(signature) != SIGNATURE_LENGTH:
        raise Problem("bad-signature", f"{alg} signature must be {SIGNATURE_LENGTH} bytes")
    try:
        if alg in EDDSA_ALGS and isinstance(public, Ed25519PublicKey):
            ed25519.verify(public, signature, signing_input)
        elif (
            alg == "ES256"
            and isinstance(public, ec.EllipticCurvePublicKey)
            and isinstance(public.curve, ec.SECP256R1)
        ):
            r = int.from_bytes(signature[:_P256_SCALAR_BYTES], "big")
            s = int.from_bytes(signature[_P256_SCALAR_BYTES:], "big")
            if s > P256_HALF_ORDER:
                raise Problem("bad-signature", "ES256 signature S must be at most n/2 (low-S)")
            public.verify(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
        else:
            raise Problem("bad-signature", f"alg {alg!r} does not fit the key")
    except (InvalidSignature, ed25519.InvalidEd25519Signature):
        raise Problem("bad-signature", "signature does not verify") from None


def verify(parsed: ParsedJWS, key: PublicKey) -> None:
    """Verify a parsed JWS with `key`; raise `Problem("bad-signature")` on any failure."""
    if parsed.alg not in algs_for(key):
        raise Problem("bad-signature", f"alg {parsed.alg!r} does not fit key {key.kid!r}")
    verify_raw(key.key, parsed.alg, parsed.signing_input, parsed.signature)


def sign_raw(private: PrivateKeyType, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature bytes of `signing_input` (raw R||S for ES256)."""
    if alg in EDDSA_ALGS and isinstance(private, Ed25519PrivateKey):
        return ed25519.sign(private, signing_input)
    if (
        alg == "ES256"
        and isinstance(private, ec.EllipticCurvePrivateKey)
        and isinstance(private.curve, ec.SECP256R1)
    ):
        r, s = decode_dss_signature(private.sign(signing_input, _ECDSA_SHA256))
        return es256_signature(r, s)
    raise ValueError(f"alg {alg!r} does not fit the private key")


def es256_signature(r: int, s: int) -> bytes:
    """The raw R||S bytes of an ECDSA P-256 signature, in its low-S form (S <= n/2)."""
    if s > P256_HALF_ORDER:
        s = P256_ORDER - s
    return r.to_bytes(_P256_SCALAR_BYTES, "big") + s.to_bytes(_P256_SCALAR_BYTES, "big")


def sign_compact(key: SigningKey, payload: bytes, *, alg: str | None = None) -> bytes:
    """Sign `payload` as a compact JWS with header {"alg","kid","typ"} in that order."""
    chosen = key.alg if alg is None else alg
    if chosen not in SUPPORTED_ALGS:
        raise ValueError(f"alg {chosen!r} is not supported")
    header = jsonstrict.dumps({"alg": chosen, "kid": key.kid, "typ": TYP})
    signing_input = (b64url_encode(header) + "." + b64url_encode(payload)).encode("ascii")
    signature = sign_raw(key.private, chosen, signing_input)
    return signing_input + b"." + b64url_encode(signature).encode("ascii")
