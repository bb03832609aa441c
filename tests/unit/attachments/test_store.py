"""FileStore: staged uploads resumed from their durable length, checked against the
signed digest and size, stored once under their digest."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.attachments.store import FileStore, digest_of
from service.protocol.b64 import b64url_encode
from service.protocol.problems import Problem
from service.protocol.receipts import sha256_digest

DATA = bytes(range(256)) * 1000  # 256,000 bytes
DIGEST = sha256_digest(DATA)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "attachments")


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _stored_files(store: FileStore) -> list[Path]:
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def test_an_upload_in_one_request_is_stored_under_its_digest(store: FileStore) -> None:
    assert store.append("m1-0", 0, _chunks(DATA), len(DATA)) == len(DATA)
    stored = store.complete("m1-0", DIGEST, len(DATA))
    assert (stored.digest, stored.size, stored.written) == (DIGEST, len(DATA), True)
    with store.open(DIGEST) as stream:
        assert stream.read() == DATA
    assert store.offset("m1-0") == 0  # the staging file moved into the store


def test_an_upload_broken_off_resumes_from_the_held_offset(store: FileStore) -> None:
    def broken() -> Iterator[bytes]:
        yield DATA[:100_000]
        raise ConnectionResetError("the sender went away")

    with pytest.raises(ConnectionResetError):
        store.append("m1-0", 0, broken(), len(DATA))
    # A broken request keeps what arrived, so only the rest is sent again.
    assert store.offset("m1-0") == 100_000
    assert store.append("m1-0", 100_000, _chunks(DATA[100_000:]), len(DATA)) == len(DATA)
    assert store.complete("m1-0", DIGEST, len(DATA)).written


def test_a_restarted_store_reports_what_survived(store: FileStore) -> None:
    store.append("m1-0", 0, [DATA[:1234]], len(DATA))
    again = FileStore(store.root)  # a new process after a crash
    assert again.offset("m1-0") == 1234
    again.append("m1-0", 1234, [DATA[1234:]], len(DATA))
    assert again.complete("m1-0", DIGEST, len(DATA)).digest == DIGEST


def test_an_offset_other_than_the_held_one_is_refused_with_it(store: FileStore) -> None:
    store.append("m1-0", 0, [DATA[:10]], len(DATA))
    with pytest.raises(Problem) as caught:
        store.append("m1-0", 5, [DATA[5:20]], len(DATA))
    assert caught.value.code == "upload-offset"
    assert caught.value.headers == {"Upload-Offset": "10"}
    assert store.offset("m1-0") == 10


def test_bytes_past_the_declared_size_are_refused_and_not_kept(store: FileStore) -> None:
    store.append("m1-0", 0, [DATA[:10]], 20)
    with pytest.raises(Problem) as caught:
        store.append("m1-0", 10, [DATA[10:15], DATA[15:25]], 20)
    assert caught.value.code == "attachment-size"
    assert store.offset("m1-0") == 10


def test_bytes_with_another_digest_are_discarded_whole(store: FileStore) -> None:
    flipped = bytes([DATA[0] ^ 1]) + DATA[1:]
    store.append("m1-0", 0, [flipped], len(DATA))
    with pytest.raises(Problem) as caught:
        store.complete("m1-0", DIGEST, len(DATA))
    assert caught.value.code == "attachment-digest"
    assert store.offset("m1-0") == 0
    assert not store.exists(DIGEST)
    assert _stored_files(store) == []


def test_completing_before_every_byte_arrived_is_refused_and_keeps_the_upload(
    store: FileStore,
) -> None:
    store.append("m1-0", 0, [DATA[:10]], len(DATA))
    with pytest.raises(Problem) as caught:
        store.complete("m1-0", DIGEST, len(DATA))
    assert caught.value.code == "attachment-size"
    assert store.offset("m1-0") == 10


def test_the_same_bytes_of_two_messages_are_stored_once(store: FileStore) -> None:
    for key in ("m1-0", "m2-0"):
        store.append(key, 0, [DATA], len(DATA))
    assert store.complete("m1-0", DIGEST, len(DATA)).written
    assert not store.complete("m2-0", DIGEST, len(DATA)).written
    assert len(_stored_files(store)) == 1
    assert store.offset("m2-0") == 0


def test_delete_removes_the_bytes_once(store: FileStore) -> None:
    store.append("m1-0", 0, [DATA], len(DATA))
    store.complete("m1-0", DIGEST, len(DATA))
    assert store.delete(DIGEST)
    assert not store.exists(DIGEST)
    assert not store.delete(DIGEST)


@pytest.mark.parametrize("key", ["", "../escape", "a/b", "x" * 129, "m1.0"])
def test_an_upload_key_is_never_a_path(store: FileStore, key: str) -> None:
    with pytest.raises(ValueError, match="not an upload key"):
        store.offset(key)


@pytest.mark.parametrize("digest", ["sha-256:../../etc", "sha-1:" + "A" * 43, DIGEST + "A"])
def test_a_digest_is_never_a_path(store: FileStore, digest: str) -> None:
    with pytest.raises(ValueError, match="not a sha-256 digest"):
        store.exists(digest)


def test_storing_a_large_file_holds_it_in_constant_memory(store: FileStore) -> None:
    block = b"\x5a" * (1 << 20)
    blocks = 64  # 64 MiB through the store

    sha = hashlib.sha256()
    for _ in range(blocks):
        sha.update(block)
    digest = "sha-256:" + b64url_encode(sha.digest())
    tracemalloc.start()
    try:
        store.append("big-0", 0, (block for _ in range(blocks)), blocks * len(block))
        store.complete("big-0", digest, blocks * len(block))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * (1 << 20), peak
    with store.open(digest) as stream:
        assert digest_of(stream) == (digest, blocks * len(block))
