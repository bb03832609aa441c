"""Strict base64url and standard base64."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.protocol.b64 import b64_decode, b64_encode, b64url_decode, b64url_encode

# RFC 4648 section 10 test vectors.
RFC4648_VECTORS = [
    (b"", ""),
    (b"f", "Zg=="),
    (b"fo", "Zm8="),
    (b"foo", "Zm9v"),
    (b"foob", "Zm9vYg=="),
    (b"fooba", "Zm9vYmE="),
    (b"foobar", "Zm9vYmFy"),
]


@pytest.mark.parametrize(("data", "encoded"), RFC4648_VECTORS)
def test_b64_encode_matches_rfc4648_vectors(data: bytes, encoded: str) -> None:
    assert b64_encode(data) == encoded


@pytest.mark.parametrize(("data", "encoded"), RFC4648_VECTORS)
def test_b64_decode_matches_rfc4648_vectors(data: bytes, encoded: str) -> None:
    assert b64_decode(encoded) == data


@pytest.mark.parametrize(("data", "encoded"), RFC4648_VECTORS)
def test_b64url_encode_drops_padding(data: bytes, encoded: str) -> None:
    assert b64url_encode(data) == encoded.rstrip("=")


@pytest.mark.parametrize(("data", "encoded"), RFC4648_VECTORS)
def test_b64url_decode_reads_unpadded_vectors(data: bytes, encoded: str) -> None:
    assert b64url_decode(encoded.rstrip("=")) == data


def test_b64url_uses_url_alphabet() -> None:
    assert b64url_encode(b"\xfb\xff\xbf") == "-_-_"
    assert b64url_decode("-_-_") == b"\xfb\xff\xbf"


def test_b64url_decode_accepts_bytes() -> None:
    assert b64url_decode(b"Zm9v") == b"foo"


@pytest.mark.parametrize(
    "text",
    [
        "Zg==",  # padding
        "Zm8=",
        "Zm 9v",  # whitespace
        "Zm9v\n",
        "+/+/",  # standard alphabet
        "Zm9vY",  # length % 4 == 1
        "Zh",  # non-zero unused bits ("f" is "Zg")
        "Zm9",  # non-zero unused bits ("fo" is "Zm8")
        "Zm9vé",
        "Zm9v.",
    ],
)
def test_b64url_decode_refuses_non_canonical_text(text: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        b64url_decode(text)


def test_b64url_decode_refuses_non_ascii_bytes() -> None:
    with pytest.raises(ValueError, match="base64url"):
        b64url_decode(b"Zm9v\xc3\xa9")


@pytest.mark.parametrize(
    "text",
    [
        "Zg",  # missing padding
        "Zg=",
        "Zg===",
        "=Zg=",
        "Zg==Zg==",  # data after padding
        "Zm9v\n",
        " Zm9v",
        "-_-_",  # url alphabet
        "Zh==",  # non-zero unused bits
        "Zm9=",
        "Zm9vé===",
    ],
)
def test_b64_decode_refuses_non_canonical_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)base64|padding|data|excess"):
        b64_decode(text)


@given(st.binary(max_size=300))
def test_b64url_round_trips_any_bytes(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@given(st.binary(max_size=300))
def test_b64_round_trips_any_bytes(data: bytes) -> None:
    assert b64_decode(b64_encode(data)) == data


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ", max_size=40
    )
)
def test_b64url_decode_accepts_only_its_own_encodings(text: str) -> None:
    try:
        data = b64url_decode(text)
    except ValueError:
        return
    assert b64url_encode(data) == text
