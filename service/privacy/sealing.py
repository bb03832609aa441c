"""Sealing personal data at rest (docs/privacy.md, "Encryption at rest").

Each item is encrypted with AES-256-GCM under a fresh random 256-bit data key and a
random 96-bit nonce; the associated data binds it to its place (a table, column and row,
or a file), so sealed bytes moved elsewhere fail to open. The data key is wrapped with
AES key wrap (RFC 3394) under a key-encryption key (KEK) of the node's `KekRing` and
kept beside the ciphertext with the KEK's id. Rotating the KEK re-wraps data keys
(`Sealer.rewrap`) without touching ciphertexts.

Files (attachments) are sealed as a stream of chunks (`seal_stream`, `open_stream`):
a header holding the KEK id, the wrapped data key, a nonce prefix and the chunk size,
then each chunk sealed with the nonce `prefix || index (4 bytes) || final (1 byte)`,
so chunks cannot be reordered, dropped or appended unnoticed, and a stream cut at a
chunk boundary lacks its final chunk.

Pure: values and file objects in, values out; no database, no paths, no clock.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

KEK_BYTES = 32
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_KEY_BYTES = DATA_KEY_BYTES + 8
KEK_ID_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"
_KEK_ID = re.compile(KEK_ID_RE)
# A sealed item as one byte string starts with a zero byte, which no compact JWS (whose
# first character is base64url) and no JSON text does.
_ITEM_MAGIC = b"\x00mgx-sealed\x01"
_STREAM_MAGIC = b"\x00mgx-stream\x01"
_STREAM_PREFIX_BYTES = 7
DEFAULT_CHUNK_BYTES = 64 * 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
_CHECK_PLAINTEXT = b"migex key-encryption key check"


class SealError(Exception):
    """Sealed bytes that do not open: another KEK, another row, or altered bytes."""


def check_kek_id(kek_id: str) -> str:
    if _KEK_ID.fullmatch(kek_id) is None:
        raise ValueError(f"KEK id {kek_id!r} must match {KEK_ID_RE}")
    return kek_id


@dataclass(frozen=True)
class KekRing:
    """The node's key-encryption keys by id; new items are sealed under `active`."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        for kek_id, key in self.keys.items():
            check_kek_id(kek_id)
            if len(key) != KEK_BYTES:
                raise ValueError(f"KEK {kek_id} must be {KEK_BYTES} bytes, not {len(key)}")
        if self.active not in self.keys:
            raise ValueError(f"the active KEK {self.active!r} is not among the KEKs")

    def key(self, kek_id: str) -> bytes:
        try:
            return self.keys[kek_id]
        except KeyError:
            raise SealError(f"no key-encryption key {kek_id!r} is configured") from None


@dataclass(frozen=True)
class Sealed:
    """One sealed item: the KEK id, the wrapped data key, and `body` (nonce, ciphertext, tag)."""

    kek_id: str
    wrapped_key: bytes
    body: bytes

    def to_bytes(self) -> bytes:
        kek = self.kek_id.encode("ascii")
        return _ITEM_MAGIC + bytes([len(kek)]) + kek + self.wrapped_key + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> Sealed:
        if not is_sealed_item(data):
            raise SealError("not a sealed item")
        kek_id, rest = _read_kek_id(data, len(_ITEM_MAGIC))
        if len(rest) < WRAPPED_KEY_BYTES + NONCE_BYTES + TAG_BYTES:
            raise SealError("sealed item is truncated")
        return cls(kek_id, rest[:WRAPPED_KEY_BYTES], rest[WRAPPED_KEY_BYTES:])


def is_sealed_item(data: bytes) -> bool:
    return data.startswith(_ITEM_MAGIC)


def _read_kek_id(data: bytes, at: int) -> tuple[str, bytes]:
    if len(data) <= at:
        raise SealError("sealed bytes are truncated")
    length = data[at]
    raw = data[at + 1 : at + 1 + length]
    try:
        kek_id = check_kek_id(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise SealError("sealed bytes name no valid KEK id") from None
    return kek_id, data[at + 1 + length :]


class Sealer:
    """Seals and opens items and streams under a `KekRing`."""

    def __init__(self, ring: KekRing) -> None:
        self.ring = ring

    @property
    def active(self) -> str:
        return self.ring.active

    # -- data keys ---------------------------------------------------------------
    def _new_data_key(self, kek_id: str) -> tuple[bytes, bytes]:
        data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)
        return data_key, aes_key_wrap(self.ring.key(kek_id), data_key)

    def _data_key(self, kek_id: str, wrapped_key: bytes) -> bytes:
        try:
            return aes_key_unwrap(self.ring.key(kek_id), wrapped_key)
        except (InvalidUnwrap, ValueError):
            raise SealError(f"the data key does not unwrap under KEK {kek_id!r}") from None

    def rewrap(self, kek_id: str, wrapped_key: bytes) -> bytes:
        """The data key wrapped under `kek_id`, wrapped under the active KEK instead."""
        return aes_key_wrap(self.ring.key(self.active), self._data_key(kek_id, wrapped_key))

    # -- items -------------------------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes, *, kek_id: str | None = None) -> Sealed:
        kek = self.active if kek_id is None else kek_id
        data_key, wrapped = self._new_data_key(kek)
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(kek, wrapped, nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad))

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        data_key = self._data_key(sealed.kek_id, sealed.wrapped_key)
        nonce, ciphertext = sealed.body[:NONCE_BYTES], sealed.body[NONCE_BYTES:]
        try:
            return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise SealError("sealed bytes do not open here: moved or altered") from None

    def seal_bytes(self, plaintext: bytes, aad: bytes) -> bytes:
        return self.seal(plaintext, aad).to_bytes()

    def open_bytes(self, data: bytes, aad: bytes) -> bytes:
        return self.open(Sealed.from_bytes(data), aad)

    # -- KEK check values ----------------------------------------------------------
    def check_value(self, kek_id: str) -> bytes:
        """A known value sealed under `kek_id`: stored, it later proves the KEK is the same."""
        return self.seal(_CHECK_PLAINTEXT, _check_aad(kek_id), kek_id=kek_id).to_bytes()

    def verify_check(self, kek_id: str, value: bytes) -> None:
        """Raise SealError unless `value` is `check_value(kek_id)` of this ring's KEK."""
        sealed = Sealed.from_bytes(value)
        if sealed.kek_id != kek_id or self.open(sealed, _check_aad(kek_id)) != _CHECK_PLAINTEXT:
            raise SealError(f"the check value of KEK {kek_id!r} does not open")

    # -- streams -----------------------------------------------------------------
    def seal_stream(
        self, src: BinaryIO, aad: bytes, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> Iterator[bytes]:
        """The sealed stream of `src`'s bytes: the header, then one sealed piece per chunk."""
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk size must be 1 to {MAX_CHUNK_BYTES} bytes")
        data_key, wrapped = self._new_data_key(self.active)
        prefix = os.urandom(_STREAM_PREFIX_BYTES)
        yield stream_header(self.active, wrapped, prefix, chunk_bytes)
        aead = AESGCM(data_key)
        index = 0
        chunk = _read_full(src, chunk_bytes)
        while True:
            following = _read_full(src, chunk_bytes) if len(chunk) == chunk_bytes else b""
            final = not following
            yield aead.encrypt(_chunk_nonce(prefix, index, final), chunk, aad)
            if final:
                return
            chunk, index = following, index + 1

    def open_stream(self, src: BinaryIO, aad: bytes) -> Iterator[bytes]:
        """The plaintext of a sealed stream, chunk by chunk, each checked before it is given.

        A stream cut short, extended or altered raises SealError at the bad chunk: a
        reader must discard what it was given before (or read all before acting)."""
        header = read_stream_header(src)
        aead = AESGCM(self._data_key(header.kek_id, header.wrapped_key))
        piece = header.chunk_bytes + TAG_BYTES
        index = 0
        chunk = _read_full(src, piece)
        while True:
            following = _read_full(src, piece) if len(chunk) == piece else b""
            final = not following
            try:
                yield aead.decrypt(_chunk_nonce(header.prefix, index, final), chunk, aad)
            except (InvalidTag, ValueError):
                raise SealError(f"chunk {index} of the sealed stream does not open") from None
            if final:
                return
            chunk, index = following, index + 1

    def rewrap_stream_header(self, header: StreamHeader) -> bytes:
        """The header of the same stream with its data key wrapped under the active KEK:
        write it in place of the old header (its length may differ) and keep the chunks."""
        wrapped = self.rewrap(header.kek_id, header.wrapped_key)
        return stream_header(self.active, wrapped, header.prefix, header.chunk_bytes)


@dataclass(frozen=True)
class StreamHeader:
    kek_id: str
    wrapped_key: bytes
    prefix: bytes
    chunk_bytes: int
    length: int  # of the header in bytes: the chunks start there


def stream_header(kek_id: str, wrapped_key: bytes, prefix: bytes, chunk_bytes: int) -> bytes:
    kek = kek_id.encode("ascii")
    return (
        _STREAM_MAGIC
        + bytes([len(kek)])
        + kek
        + wrapped_key
        + prefix
        + struct.pack(">I", chunk_bytes)
    )


def is_sealed_stream(start: bytes) -> bool:
    """Whether bytes beginning with `start` (at least STREAM_MAGIC_BYTES of them) look
    like a sealed stream; a file in the clear may begin so too, rarely (its digest tells)."""
    return start.startswith(_STREAM_MAGIC)


STREAM_MAGIC_BYTES = len(_STREAM_MAGIC)


def read_stream_header(src: BinaryIO) -> StreamHeader:
    """Read a sealed stream's header from `src`, leaving it at the first chunk."""
    start = _read_full(src, len(_STREAM_MAGIC) + 1)
    if len(start) < len(_STREAM_MAGIC) + 1 or not start.startswith(_STREAM_MAGIC):
        raise SealError("not a sealed stream")
    rest_length = start[-1] + WRAPPED_KEY_BYTES + _STREAM_PREFIX_BYTES + 4
    rest = _read_full(src, rest_length)
    if len(rest) < rest_length:
        raise SealError("sealed stream header is truncated")
    kek_id, tail = _read_kek_id(start[-1:] + rest, 0)
    wrapped, tail = tail[:WRAPPED_KEY_BYTES], tail[WRAPPED_KEY_BYTES:]
    prefix, size = tail[:_STREAM_PREFIX_BYTES], struct.unpack(">I", tail[-4:])[0]
    if not 0 < size <= MAX_CHUNK_BYTES:
        raise SealError("sealed stream header names an invalid chunk size")
    return StreamHeader(kek_id, wrapped, prefix, size, len(start) + rest_length)


def _chunk_nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= 2**32:
        raise SealError("sealed stream has too many chunks")
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _read_full(src: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of `src` (a read may return less)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = src.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _check_aad(kek_id: str) -> bytes:
    return b"migex.kek-check\x00" + kek_id.encode("ascii")
