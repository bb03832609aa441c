"""Sealing at rest (service/privacy/sealing.py): items, KEK check values, re-wrapping
and chunked streams, with the negative cases (another row, another KEK, a flipped bit,
a stream cut, reordered or extended)."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.privacy.sealing import (
    TAG_BYTES,
    KekRing,
    Sealed,
    Sealer,
    SealError,
    is_sealed_item,
    read_stream_header,
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
AAD = b"messages.jws\x00UZ:MIA\x00id-1"
BODY = b"eyJhbGciOiJFZERTQSJ9.eyJib2R5Ijp7fX0.c2ln"


def sealer(active: str = "k1", **keys: bytes) -> Sealer:
    return Sealer(KekRing(keys or {"k1": K1}, active))


def test_a_sealed_item_opens_to_its_plaintext_and_does_not_hold_it() -> None:
    s = sealer()
    sealed = s.seal(BODY, AAD)
    assert sealed.kek_id == "k1"
    assert len(sealed.wrapped_key) == 40
    assert BODY not in sealed.body
    assert s.open(sealed, AAD) == BODY


def test_each_seal_uses_a_fresh_data_key_and_nonce() -> None:
    s = sealer()
    a, b = s.seal(BODY, AAD), s.seal(BODY, AAD)
    assert a.wrapped_key != b.wrapped_key
    assert a.body[:12] != b.body[:12]


def test_a_sealed_item_does_not_open_for_another_row() -> None:
    s = sealer()
    sealed = s.seal(BODY, AAD)
    with pytest.raises(SealError, match="moved or altered"):
        s.open(sealed, b"messages.jws\x00UZ:MIA\x00id-2")


@pytest.mark.parametrize("part", ["wrapped_key", "body"])
def test_a_flipped_bit_is_refused(part: str) -> None:
    s = sealer()
    sealed = s.seal(BODY, AAD)
    value = bytearray(getattr(sealed, part))
    value[len(value) // 2] ^= 1
    changed = Sealed(
        sealed.kek_id,
        bytes(value) if part == "wrapped_key" else sealed.wrapped_key,
        bytes(value) if part == "body" else sealed.body,
    )
    with pytest.raises(SealError):
        s.open(changed, AAD)


def test_another_kek_under_the_same_id_does_not_open_it() -> None:
    sealed = sealer().seal(BODY, AAD)
    with pytest.raises(SealError, match="does not unwrap"):
        sealer(k1=K2).open(sealed, AAD)


def test_an_unknown_kek_id_is_named() -> None:
    sealed = sealer().seal(BODY, AAD)
    with pytest.raises(SealError, match="'k1' is configured"):
        sealer("k2", k2=K2).open(sealed, AAD)


def test_rewrap_moves_the_data_key_to_the_active_kek_and_keeps_the_ciphertext() -> None:
    sealed = sealer().seal(BODY, AAD)
    both = sealer("k2", k1=K1, k2=K2)
    rewrapped = Sealed("k2", both.rewrap("k1", sealed.wrapped_key), sealed.body)
    assert rewrapped.body == sealed.body
    assert sealer("k2", k2=K2).open(rewrapped, AAD) == BODY
    with pytest.raises(SealError):
        sealer("k2", k2=K1).open(rewrapped, AAD)


def test_an_item_as_bytes_is_marked_and_round_trips() -> None:
    s = sealer()
    data = s.seal_bytes(BODY, AAD)
    assert is_sealed_item(data)
    assert not is_sealed_item(BODY)
    assert s.open_bytes(data, AAD) == BODY
    with pytest.raises(SealError):
        s.open_bytes(BODY, AAD)
    with pytest.raises(SealError, match="truncated"):
        s.open_bytes(data[:30], AAD)


def test_a_check_value_opens_only_under_its_own_kek() -> None:
    value = sealer().check_value("k1")
    sealer().verify_check("k1", value)
    with pytest.raises(SealError):
        sealer(k1=K2).verify_check("k1", value)
    with pytest.raises(SealError):
        sealer("k1", k1=K1, k2=K1).verify_check("k2", value)


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ({"k1": K1}, "k2", "not among"),
        ({"k1": K1[:16]}, "k1", "must be 32 bytes"),
        ({"bad id": K1}, "bad id", "must match"),
    ],
)
def test_a_bad_ring_is_refused(keys: dict[str, bytes], active: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KekRing(keys, active)


# -- streams ------------------------------------------------------------------------
CHUNK = 16


def sealed_stream(s: Sealer, data: bytes, aad: bytes = b"attachment:1") -> bytes:
    return b"".join(s.seal_stream(io.BytesIO(data), aad, chunk_bytes=CHUNK))


def opened(s: Sealer, stream: bytes, aad: bytes = b"attachment:1") -> bytes:
    return b"".join(s.open_stream(io.BytesIO(stream), aad))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_a_stream_of_any_length_round_trips(size: int) -> None:
    s = sealer()
    data = bytes(i % 251 for i in range(size))
    stream = sealed_stream(s, data)
    header = read_stream_header(io.BytesIO(stream))
    chunks = max(1, -(-size // CHUNK))
    assert len(stream) - header.length == size + chunks * TAG_BYTES
    assert opened(s, stream) == data


def _pieces(stream: bytes) -> tuple[bytes, list[bytes]]:
    header = read_stream_header(io.BytesIO(stream))
    body = stream[header.length :]
    size = CHUNK + TAG_BYTES
    return stream[: header.length], [body[i : i + size] for i in range(0, len(body), size)]


def test_a_stream_cut_at_a_chunk_boundary_is_refused() -> None:
    s = sealer()
    head, pieces = _pieces(sealed_stream(s, bytes(3 * CHUNK + 5)))
    with pytest.raises(SealError, match="chunk 2"):
        opened(s, head + b"".join(pieces[:3]))


def test_reordered_chunks_are_refused() -> None:
    s = sealer()
    head, pieces = _pieces(sealed_stream(s, bytes(range(3 * CHUNK + 5))))
    with pytest.raises(SealError, match="chunk 0"):
        opened(s, head + pieces[1] + pieces[0] + b"".join(pieces[2:]))


def test_a_chunk_appended_after_the_final_one_is_refused() -> None:
    s = sealer()
    head, pieces = _pieces(sealed_stream(s, bytes(CHUNK + 5)))
    with pytest.raises(SealError):
        opened(s, head + b"".join(pieces) + pieces[0])


def test_a_stream_does_not_open_for_another_file() -> None:
    s = sealer()
    with pytest.raises(SealError):
        opened(s, sealed_stream(s, b"passport scan"), b"attachment:2")


def test_a_rewrapped_stream_header_keeps_the_chunks_openable_under_the_new_kek() -> None:
    stream = sealed_stream(sealer(), b"passport scan " * 10)
    header = read_stream_header(io.BytesIO(stream))
    both = sealer("k2", k1=K1, k2=K2)
    moved = both.rewrap_stream_header(header) + stream[header.length :]
    assert opened(sealer("k2", k2=K2), moved) == b"passport scan " * 10


def test_new_kek_writes_32_random_bytes_with_mode_0600_and_never_overwrites(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kek"
    first = CliRunner().invoke(app, ["privacy", "new-kek", str(path)])
    assert first.exit_code == 0, first.output
    key = path.read_bytes()
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = CliRunner().invoke(app, ["privacy", "new-kek", str(path)])
    assert again.exit_code == 1
    assert path.read_bytes() == key
