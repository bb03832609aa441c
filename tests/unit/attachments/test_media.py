"""The media type of attachment bytes comes from their signature, not their name."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from service.attachments.media import detected_media_types, matches_declared

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x00" * 32 + b"\xff\xd9"


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")],
)
def test_the_declared_type_of_matching_bytes_is_accepted(data: bytes, media_type: str) -> None:
    assert matches_declared(io.BytesIO(data), media_type)


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PNG, "application/pdf"),
        (PDF, "image/jpeg"),
        (b"MZ\x90\x00\x03" + b"\x00" * 60, "application/pdf"),
    ],
)
def test_bytes_of_another_type_do_not_match(data: bytes, declared: str) -> None:
    assert not matches_declared(io.BytesIO(data), declared)


def test_bytes_without_a_known_signature_match_nothing() -> None:
    assert detected_media_types(io.BytesIO(b"just some text, no signature")) == frozenset()
    assert not matches_declared(io.BytesIO(b""), "application/pdf")


def test_detection_leaves_the_stream_at_its_start() -> None:
    stream = io.BytesIO(PDF)
    detected_media_types(stream)
    assert stream.read() == PDF


def test_a_large_file_is_checked_from_its_head_and_tail_only(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    with path.open("wb") as out:
        out.write(PDF)
        out.truncate(512 * (1 << 20))  # 512 MiB, sparse
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            assert matches_declared(stream, "application/pdf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * (1 << 20), peak
