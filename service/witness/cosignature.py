"""C2SP tlog-cosignature, the Ed25519 ``cosignature/v1`` type (https://c2sp.org/tlog-cosignature).

A cosignature is a note signature line on a checkpoint::

    — <cosigner name> base64(key id (4 bytes) || timestamp (8 bytes, big-endian) || signature)

The key id is SHA-256(name || "\\n" || 0x04 || Ed25519 public key)[:4], and the
cosigner's verifier key is ``<name>+<hex key id>+<base64(0x04 || public key)>``.
The Ed25519 signature is over::

    cosignature/v1
    time <timestamp, decimal>
    <the whole checkpoint note body, extension lines included>

This module is pure: no I/O. The clock is the caller's ``timestamp``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.audit.note import (
    NoteError,
    NoteSignature,
    format_verifier_key,
    is_valid_key_name,
    parse_any_verifier_key,
    parse_signature_line,
    signature_line,
    split_note,
    typed_key_id,
)

COSIGNATURE_ALGORITHM = 0x04
"""The signature type byte of Ed25519 ``cosignature/v1`` keys."""
HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
_TIMESTAMP_SIZE = 8
_ED25519_SIGNATURE_SIZE = 64
_ED25519_KEY_SIZE = 32


class CosignatureError(ValueError):
    """A cosignature or a cosigner key is malformed, or a cosignature does not verify."""


@dataclass(frozen=True)
class CosignerKey:
    """A cosigner's name and Ed25519 public key, as pinned from its verifier key."""

    name: str
    public: Ed25519PublicKey

    @property
    def key_id(self) -> int:
        return typed_key_id(self.name, COSIGNATURE_ALGORITHM, self.public.public_bytes_raw())

    @property
    def vkey(self) -> str:
        """``<name>+<hex key id>+<base64(0x04 || public key)>``."""
        return format_verifier_key(self.name, COSIGNATURE_ALGORITHM, self.public.public_bytes_raw())


@dataclass(frozen=True)
class Cosignature:
    """One parsed cosignature line (not yet verified)."""

    name: str
    key_id: int
    timestamp: int
    signature: bytes


def parse_cosigner_vkey(vkey: str) -> CosignerKey:
    """Parse a cosigner's verifier key; CosignatureError unless it is an Ed25519 0x04 key."""
    try:
        parsed = parse_any_verifier_key(vkey)
    except ValueError as exc:
        raise CosignatureError(f"bad cosigner verifier key: {exc}") from exc
    if parsed.algorithm != COSIGNATURE_ALGORITHM or len(parsed.key) != _ED25519_KEY_SIZE:
        raise CosignatureError(
            "a cosigner verifier key holds 0x04 and a 32-byte Ed25519 public key"
        )
    return CosignerKey(parsed.name, Ed25519PublicKey.from_public_bytes(parsed.key))


def signed_message(body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 ``cosignature/v1`` signs over the checkpoint note ``body``."""
    _check_body(body)
    _check_timestamp(timestamp)
    return f"{HEADER}time {timestamp}\n{body}".encode()


def cosign(body: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line (ending in a newline) of key ``name`` over the note ``body``."""
    if not is_valid_key_name(name):
        raise CosignatureError(f"invalid cosigner name {name!r}")
    signature = private.sign(signed_message(body, timestamp))
    blob = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
    return signature_line(name, CosignerKey(name, private.public_key()).key_id, blob)


def parse_cosignature(line: str) -> Cosignature:
    """Parse one cosignature line (with or without its newline) without verifying it."""
    try:
        sig = parse_signature_line(line.removesuffix("\n"))
    except NoteError as exc:
        raise CosignatureError(str(exc)) from exc
    return _from_note_signature(sig)


def _from_note_signature(sig: NoteSignature) -> Cosignature:
    if len(sig.signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
        raise CosignatureError("an Ed25519 cosignature holds an 8-byte time and 64-byte signature")
    timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CosignatureError("a cosignature's time may not exceed 2**63 - 1")
    return Cosignature(sig.name, sig.key_id, timestamp, sig.signature[_TIMESTAMP_SIZE:])


def is_by(sig: NoteSignature | Cosignature, key: CosignerKey) -> bool:
    """Whether a signature line claims to be by ``key`` (same name and key id)."""
    return sig.name == key.name and sig.key_id == key.key_id


def verify_cosignature(body: str, cosignature: Cosignature, key: CosignerKey) -> int:
    """Verify a parsed cosignature over ``body`` with ``key``; return its timestamp."""
    if not is_by(cosignature, key):
        raise CosignatureError(f"the cosignature is not by {key.name}+{key.key_id:08x}")
    try:
        key.public.verify(cosignature.signature, signed_message(body, cosignature.timestamp))
    except InvalidSignature as exc:
        raise CosignatureError(f"the cosignature by {key.name} does not verify") from exc
    return cosignature.timestamp


def verify_line(body: str, line: str, key: CosignerKey) -> int:
    """Parse and verify one cosignature line against a pinned key; return its timestamp."""
    return verify_cosignature(body, parse_cosignature(line), key)


def find_cosignature(note: str, key: CosignerKey) -> int | None:
    """The timestamp of ``key``'s valid cosignature on a signed note, None if it has none.

    Lines by other keys are ignored. A line that claims to be by ``key`` (its name
    and key id) but does not verify raises :class:`CosignatureError`.
    """
    try:
        body, signatures = split_note(note)
    except NoteError as exc:
        raise CosignatureError(str(exc)) from exc
    for sig in signatures:
        if is_by(sig, key):
            return verify_cosignature(body, _from_note_signature(sig), key)
    return None


def _check_body(body: str) -> None:
    if not body.endswith("\n") or "\n\n" in body:
        raise CosignatureError("a checkpoint note body is non-empty lines ending in a newline")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError("a cosignature's time is 0..2**63 - 1")
