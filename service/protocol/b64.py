"""Strict base64 codecs.

Two alphabets travel on the wire: base64url without padding (RFC 4648 section 5,
as JOSE uses it) in messages and digests, and standard base64 with padding (RFC
4648 section 4) for audit hashes and checkpoints. Decoders accept exactly one
encoding of each value: no whitespace, no characters outside the alphabet, no
stray padding and no non-zero unused trailing bits. Errors are `ValueError`.
"""

from __future__ import annotations

import base64
import binascii
import re

_URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL_VALUE = {c: i for i, c in enumerate(_URL_ALPHABET)}
_STD_VALUE = {c: i for i, c in enumerate(_STD_ALPHABET)}
_URL_TO_STD = bytes.maketrans(b"-_", b"+/")
_URL_RE = re.compile(rb"[A-Za-z0-9_-]*")
# Unused low bits of the last character, by number of characters in the final quantum.
_UNUSED_BITS_MASK = {2: 0x0F, 3: 0x03}


def _as_ascii_bytes(text: str | bytes) -> bytes:
    if isinstance(text, str):
        if not text.isascii():
            raise ValueError("base64 text contains non-ASCII characters")
        return text.encode("ascii")
    return bytes(text)


def _check_trailing_bits(last: str, chars_in_quantum: int, values: dict[str, int]) -> None:
    mask = _UNUSED_BITS_MASK.get(chars_in_quantum)
    if mask is not None and values[last] & mask:
        raise ValueError("base64 text has non-zero unused trailing bits")


def b64url_encode(data: bytes) -> str:
    """base64url of `data`, without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url, refusing anything but the one canonical encoding."""
    raw = _as_ascii_bytes(text)
    if _URL_RE.fullmatch(raw) is None:
        raise ValueError("base64url text contains characters outside A-Z a-z 0-9 - _")
    rest = len(raw) % 4
    if rest == 1:
        raise ValueError("base64url text has an impossible length")
    if rest:
        _check_trailing_bits(chr(raw[-1]), rest, _URL_VALUE)
        raw += b"=" * (4 - rest)
    # Only alphabet characters and correct padding remain: the lenient decoder is exact.
    return binascii.a2b_base64(raw.translate(_URL_TO_STD))


def b64_encode(data: bytes) -> str:
    """Standard base64 of `data`, with padding."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str | bytes) -> bytes:
    """Decode padded standard base64, refusing anything but the one canonical encoding."""
    raw = _as_ascii_bytes(text)
    if len(raw) % 4:
        raise ValueError("base64 text length is not a multiple of 4")
    data = binascii.a2b_base64(raw, strict_mode=True)
    if raw.endswith(b"="):
        significant = raw.rstrip(b"=")
        _check_trailing_bits(chr(significant[-1]), len(significant) % 4, _STD_VALUE)
    return data
