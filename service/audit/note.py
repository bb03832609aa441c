"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then one signature line
per signer::

    <text>
    <blank line>
    — <key name> <base64(key id (4 bytes, big-endian) || Ed25519 signature)>

The key id is the first four bytes of SHA-256(key name || "\\n" || 0x01 || public
key), and a verifier key is written ``<name>+<8 hex digits of the key id>+<base64
of 0x01 || public key>``. This is byte-compatible with golang.org/x/mod/sumdb/note.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519_ALGORITHM = 0x01
SIGNATURE_PREFIX = "\u2014 "  # EM DASH, space
MAX_SIGNATURES = 100
_ED25519_KEY_SIZE = 32
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class NoteError(ValueError):
    """A note is malformed, or no signature by the expected key verifies."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: int
    signature: bytes


def is_valid_key_name(name: str) -> bool:
    """A key name is non-empty and has neither whitespace nor '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise ValueError(f"invalid note key name {name!r}")


def key_id(name: str, public: Ed25519PublicKey) -> int:
    """The 32-bit key id of an Ed25519 note key."""
    return _key_id(name, bytes([ED25519_ALGORITHM]) + public.public_bytes_raw())


def typed_key_id(name: str, algorithm: int, key: bytes) -> int:
    """The 32-bit key id SHA-256(name || "\\n" || algorithm || key)[:4] of any key type."""
    return _key_id(name, bytes([algorithm]) + key)


def _key_id(name: str, key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The verifier key ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    return format_verifier_key(name, ED25519_ALGORITHM, public.public_bytes_raw())


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key of any signature type: name, key id, type byte and key."""

    name: str
    key_id: int
    algorithm: int
    key: bytes


def format_verifier_key(name: str, algorithm: int, key: bytes) -> str:
    """``<name>+<hex key id>+<base64(algorithm || key)>`` for any signature type."""
    _check_key_name(name)
    blob = bytes([algorithm]) + key
    return f"{name}+{_key_id(name, blob):08x}+{_b64encode(blob)}"


def parse_any_verifier_key(vkey: str) -> VerifierKey:
    """Split a verifier key of any signature type; ValueError if malformed.

    The key id must match the name, the type byte and the key material.
    """
    name, sep1, rest = vkey.partition("+")
    hex_id, sep2, key64 = rest.partition("+")
    if not (sep1 and sep2) or not is_valid_key_name(name):
        raise ValueError("a verifier key is <name>+<hex key id>+<base64 key>")
    if len(hex_id) != 8 or not _HEX_DIGITS.issuperset(hex_id):
        raise ValueError("a verifier key id is 8 hexadecimal digits")
    blob = _b64decode(key64)
    if blob is None or len(blob) < 2:
        raise ValueError("a verifier key holds a type byte and key material in base64")
    ident = int(hex_id, 16)
    if ident != _key_id(name, blob):
        raise ValueError("the verifier key id does not match its name and key")
    return VerifierKey(name, ident, blob[0], blob[1:])


def parse_verifier_key(vkey: str) -> tuple[str, int, Ed25519PublicKey]:
    """Split an Ed25519 note verifier key into (name, key id, public key); ValueError if malformed."""
    parsed = parse_any_verifier_key(vkey)
    if parsed.algorithm != ED25519_ALGORITHM or len(parsed.key) != _ED25519_KEY_SIZE:
        raise ValueError("a verifier key must hold 0x01 and a 32-byte Ed25519 public key")
    return parsed.name, parsed.key_id, Ed25519PublicKey.from_public_bytes(parsed.key)


def signature_line(name: str, ident: int, signature: bytes) -> str:
    """One note signature line ``— <name> <base64(key id || signature)>`` with its newline."""
    _check_key_name(name)
    return f"{SIGNATURE_PREFIX}{name} {_b64encode(ident.to_bytes(4, 'big') + signature)}\n"


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line (without its newline); NoteError if malformed."""
    _check_characters(line)
    if "\n" in line:
        raise NoteError("a signature line is one line")
    return _parse_signature_line(line)


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """Sign ``text`` (which must end in a newline) as a one-signature note."""
    _check_text(text)
    _check_key_name(name)
    ident = key_id(name, private.public_key())
    signature = private.sign(text.encode("utf-8"))
    return f"{text}\n{signature_line(name, ident, signature)}"


def open_note(note: str, vkey: str) -> str:
    """Verify ``note`` against the verifier key ``vkey`` and return its text.

    Signatures by other keys are ignored. Raises :class:`NoteError` if the note
    is malformed, if a signature claiming to be by ``vkey`` does not verify, or
    if there is no signature by ``vkey`` at all.
    """
    try:
        name, ident, public = parse_verifier_key(vkey)
    except ValueError as exc:
        raise NoteError(f"bad verifier key: {exc}") from exc
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    for sig in signatures:
        if sig.name != name or sig.key_id != ident:
            continue
        try:
            public.verify(sig.signature, message)
        except InvalidSignature as exc:
            raise NoteError(f"the signature by {name} does not verify") from exc
        return text
    raise NoteError(f"the note has no signature by {name}+{ident:08x}")


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Parse a note into its text and signature lines, without verifying them."""
    _check_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note needs a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a note's signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a signature line starts with an em dash and a space")
    name, _, blob64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    blob = _b64decode(blob64)
    if not is_valid_key_name(name) or blob is None or len(blob) < 5:
        raise NoteError("a signature line is '— <name> <base64 signature>'")
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    try:
        _check_characters(text)
    except NoteError as exc:
        raise ValueError(str(exc)) from exc


def _check_characters(value: str) -> None:
    """Valid UTF-8 (no lone surrogates) and no control characters but newline."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("a note must be valid UTF-8") from exc
    if any(c < " " and c != "\n" for c in value):
        raise NoteError("a note may not contain control characters other than newline")


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 section 4); None if malformed or empty."""
    if not text or not text.isascii():
        return None
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
