"""FileStore with a KEK: files sealed on completion, read back as their plaintext, never
a byte of an altered file handed out; files from before the KEK read and sealed later."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from service.attachments.sealed import AttachmentUnreadable
from service.attachments.store import FileStore
from service.privacy.sealing import DEFAULT_CHUNK_BYTES, KekRing, Sealer, read_stream_header
from service.protocol.receipts import sha256_digest

MARKER = b"IIN 900101300123 MUSTERMANN-ERIKA passport N12345678 "
DATA = MARKER * 5000  # 270,000 bytes: several sealed chunks
DIGEST = sha256_digest(DATA)
KEK_A, KEK_B = b"a" * 32, b"b" * 32


def sealer(active: str = "a") -> Sealer:
    return Sealer(KekRing({"a": KEK_A, "b": KEK_B}, active))


def _store(root: Path, active: str | None = "a") -> FileStore:
    return FileStore(root, None if active is None else sealer(active))


def _put(store: FileStore, data: bytes = DATA, key: str = "m1-0") -> str:
    digest = sha256_digest(data)
    store.append(key, 0, iter([data]), len(data))
    store.complete(key, digest, len(data))
    return digest


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _read(store: FileStore, digest: str = DIGEST) -> bytes:
    with store.open(digest) as stream:
        return stream.read()


def test_a_completed_file_is_sealed_on_disk_and_read_as_its_plaintext(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _put(store)
    files = _files(tmp_path)
    assert len(files) == 1, files  # the staged copy is gone, no temporary left
    raw = files[0].read_bytes()
    assert b"900101300123" not in raw
    assert b"MUSTERMANN" not in raw
    assert len(raw) > len(DATA)
    assert _read(store) == DATA
    assert store.exists(DIGEST)


def test_a_sealed_file_is_read_in_pieces_and_sought_for_a_resumed_transfer(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    _put(store)
    offset = DEFAULT_CHUNK_BYTES + 123
    with store.open(DIGEST) as stream:
        assert stream.read(10) == DATA[:10]
        assert stream.seek(offset) == offset
        assert stream.read(1000) == DATA[offset : offset + 1000]
        stream.seek(5)
        pieces = iter(lambda: stream.read(4096), b"")
        assert b"".join(pieces) == DATA[5:]


@pytest.mark.parametrize("at", [40, 200, 70_000, -1])
def test_an_altered_sealed_file_is_refused_before_any_byte(tmp_path: Path, at: int) -> None:
    store = _store(tmp_path)
    _put(store)
    (path,) = _files(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[at] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(AttachmentUnreadable, match="does not open"):
        store.open(DIGEST)


def test_a_cut_sealed_file_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _put(store)
    (path,) = _files(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(AttachmentUnreadable):
        store.open(DIGEST)


def test_a_sealed_file_moved_under_another_digest_does_not_open(tmp_path: Path) -> None:
    store = _store(tmp_path)
    other = _put(store, b"another file " * 100, key="m2-0")
    _put(store)
    target = next(p for p in _files(tmp_path) if p.name in other)
    source = next(p for p in _files(tmp_path) if p.name in DIGEST)
    target.write_bytes(source.read_bytes())
    with pytest.raises(AttachmentUnreadable):
        store.open(other)


def test_a_sealed_file_without_a_kek_is_refused(tmp_path: Path) -> None:
    _put(_store(tmp_path))
    with pytest.raises(AttachmentUnreadable, match="no KEK"):
        _store(tmp_path, None).open(DIGEST)


def test_a_file_from_before_the_kek_is_read_and_then_sealed(tmp_path: Path) -> None:
    _put(_store(tmp_path, None))
    store = _store(tmp_path)
    assert _read(store) == DATA
    assert store.reseal(DIGEST) == "sealed"
    (path,) = _files(tmp_path)
    assert MARKER not in path.read_bytes()
    assert _read(store) == DATA
    assert store.reseal(DIGEST) is None  # done: a second run has nothing to do


def test_a_clear_file_that_begins_like_a_sealed_one_is_told_apart(tmp_path: Path) -> None:
    data = b"\x00mgx-stream\x01" + MARKER
    digest = _put(_store(tmp_path, None), data)
    store = _store(tmp_path)
    assert _read(store, digest) == data
    assert store.reseal(digest) == "sealed"
    assert _read(store, digest) == data


def test_rotation_rewraps_the_header_and_keeps_the_chunks(tmp_path: Path) -> None:
    _put(_store(tmp_path, "a"))
    (path,) = _files(tmp_path)
    before = path.read_bytes()
    store = _store(tmp_path, "b")
    assert store.reseal(DIGEST) == "rewrapped"
    after = path.read_bytes()
    old, new = read_stream_header(io.BytesIO(before)), read_stream_header(io.BytesIO(after))
    assert (old.kek_id, new.kek_id) == ("a", "b")
    assert before[old.length :] == after[new.length :]
    assert _read(store) == DATA
    only_b = FileStore(tmp_path, Sealer(KekRing({"b": KEK_B}, "b")))
    assert _read(only_b) == DATA


def test_digests_lists_stored_files_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _put(store)
    store.append("staged", 0, iter([b"partial"]), 100)
    (path,) = _files(tmp_path / "objects")
    (path.parent / (path.name + ".0011.sealing")).write_bytes(b"left by a crash")
    assert list(store.digests()) == [DIGEST]


def test_staging_is_deleted_on_completion_and_discard(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _put(store)
    store.append("m2-0", 0, iter([b"partial"]), 100)
    store.discard("m2-0")
    assert list((tmp_path / "staging").iterdir()) == []
