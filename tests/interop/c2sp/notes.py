"""Signed notes, verifier keys, checkpoints and cosignature/v1, from the C2SP texts.

c2sp.org/signed-note: a note is UTF-8 text ending in a newline, a blank line, and one
or more lines ``— <key name> <base64(4-byte key ID || signature)>``; the text is
separated from the signatures by the LAST empty line. A key ID is
``SHA-256(name || 0x0A || type || public key)[:4]``, type 0x01 for Ed25519 note
signatures and 0x04 for timestamped Ed25519 cosignatures.

c2sp.org/tlog-checkpoint: note text of at least three non-empty lines: origin, tree
size (decimal, no leading zeroes), base64 root hash, then optional extension lines.

c2sp.org/tlog-cosignature: an Ed25519 cosignature is ``u64 timestamp || 64-byte
signature`` over ``"cosignature/v1\\n" "time <t>\\n"`` followed by the whole note text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EM_DASH = "\u2014"
TYPE_ED25519 = 0x01
TYPE_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1


class FormatError(ValueError):
    """Input that does not follow the specification text."""


class VerificationError(ValueError):
    """A signature that should verify does not, or none by a trusted key is there."""


def b64decode(text: str) -> bytes:
    """RFC 4648 section 4 base64, padding required, nothing else accepted."""
    if not text or not text.isascii():
        raise FormatError(f"not base64: {text!r}")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise FormatError(f"not base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(f"not canonical base64: {text!r}")
    return raw


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def compute_key_id(name: str, sig_type: int, public: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise FormatError(f"invalid key name {name!r}")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    blob: bytes  # the signature after the 4-byte key ID


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]


def parse_note(note: str) -> Note:
    """Split a signed note into its text and decoded signature lines."""
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise FormatError("a note contains a control character")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise FormatError("a note is text, a blank line and signature lines")
    text, block = note[: cut + 1], note[cut + 2 : -1]
    signatures = []
    for line in block.split("\n"):
        if not line.startswith(EM_DASH + " "):
            raise FormatError(f"not a signature line: {line!r}")
        name, sep, encoded = line[2:].partition(" ")
        _check_name(name)
        raw = b64decode(encoded) if sep else b""
        if len(raw) < 5:
            raise FormatError("a signature is a key ID and at least one byte")
        (key_id,) = struct.unpack(">I", raw[:4])
        signatures.append(Signature(name, key_id, raw[4:]))
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class VerifierKey:
    """A vkey: ``<name>+<hex key ID>+<base64(type || public key)>``."""

    name: str
    key_id: int
    sig_type: int
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        parts = vkey.split("+", 2)  # base64 may itself hold '+'
        if len(parts) != 3 or len(parts[1]) != 8:
            raise FormatError(f"not a vkey: {vkey!r}")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            key_id = int(hex_id, 16)
        except ValueError as exc:
            raise FormatError("the key ID is not hexadecimal") from exc
        raw = b64decode(encoded)
        if len(raw) != 33 or raw[0] not in (TYPE_ED25519, TYPE_COSIGNATURE_V1):
            raise FormatError("only Ed25519 note and cosignature keys are supported")
        if compute_key_id(name, raw[0], raw[1:]) != key_id:
            raise FormatError("the key ID does not match the name and key")
        return cls(name, key_id, raw[0], raw[1:])

    @classmethod
    def for_key(cls, name: str, sig_type: int, public: Ed25519PublicKey) -> VerifierKey:
        _check_name(name)
        raw = public.public_bytes_raw()
        return cls(name, compute_key_id(name, sig_type, raw), sig_type, raw)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([self.sig_type]) + self.public)}"

    def matches(self, sig: Signature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def check(self, text: str, sig: Signature) -> int | None:
        """Verify one matching signature; the cosignature's timestamp, or None."""
        public = Ed25519PublicKey.from_public_bytes(self.public)
        if self.sig_type == TYPE_ED25519:
            message, signature, timestamp = text.encode("utf-8"), sig.blob, None
        else:
            if len(sig.blob) != 8 + 64:
                raise VerificationError(f"a cosignature by {self.name} is not 72 bytes")
            (timestamp,) = struct.unpack(">Q", sig.blob[:8])
            if timestamp > MAX_TIMESTAMP:
                raise VerificationError("a cosignature timestamp exceeds 2^63 - 1")
            message, signature = cosignature_message(text, timestamp), sig.blob[8:]
        try:
            public.verify(signature, message)
        except InvalidSignature as exc:
            raise VerificationError(f"the signature by {self.name} does not verify") from exc
        return timestamp


def verify_note(note: str, keys: list[VerifierKey]) -> tuple[Note, dict[str, int | None]]:
    """Verify every signature by a known key (unknown ones are ignored).

    Returns the note and, per verified key name, its cosignature timestamp (None for
    a plain Ed25519 signature). Raises when a known key's signature fails, or when
    no known key signed at all.
    """
    parsed = parse_note(note)
    verified: dict[str, int | None] = {}
    for sig in parsed.signatures:
        for key in keys:
            if key.matches(sig):
                verified[str(key)] = key.check(parsed.text, sig)
    if not verified:
        raise VerificationError("no signature by a trusted key")
    return parsed, verified


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """A note with one Ed25519 (type 0x01) signature."""
    key = VerifierKey.for_key(name, TYPE_ED25519, private.public_key())
    blob = struct.pack(">I", key.key_id) + private.sign(text.encode("utf-8"))
    return f"{text}\n{EM_DASH} {name} {b64encode(blob)}\n"


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> str:
    """One cosignature/v1 signature line (ending in a newline) over a checkpoint's text."""
    key = VerifierKey.for_key(name, TYPE_COSIGNATURE_V1, private.public_key())
    signature = private.sign(cosignature_message(text, timestamp))
    blob = struct.pack(">IQ", key.key_id, timestamp) + signature
    return f"{EM_DASH} {name} {b64encode(blob)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise FormatError("checkpoint text ends in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not all(lines):
            raise FormatError("a checkpoint has at least three non-empty lines")
        origin, size, root = lines[:3]
        if not size.isascii() or not size.isdigit() or (size != "0" and size[0] == "0"):
            raise FormatError(f"bad tree size {size!r}")
        raw_root = b64decode(root)
        if len(raw_root) != 32:
            raise FormatError("the root hash is 32 bytes")
        return cls(origin, int(size), raw_root, tuple(lines[3:]))

    def text(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)
