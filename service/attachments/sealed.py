"""Attachment files sealed at rest (docs/privacy.md, "Encryption at rest").

With a KEK configured, a completed upload is stored as a sealed stream
(`service.privacy.sealing.Sealer.seal_stream`) whose associated data binds it to its
digest, so a sealed file moved under another digest does not open. Digests stay those
of the plaintext: everything keyed by digest (rows, receipts, the log) is unchanged.

A file is read only after every chunk of it has been authenticated: `open_file` makes
one pass over the whole file before it returns a stream, so no byte of an altered file
is ever handed out (a stream already sent cannot be taken back). A file stored in the
clear (before a KEK was configured) is read as it is; one that merely begins like a
sealed stream is told apart by its digest, which only the plaintext has.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from service.privacy.sealing import (
    STREAM_MAGIC_BYTES,
    Sealer,
    SealError,
    is_sealed_stream,
    read_stream_header,
)

READ_BYTES = 1 << 20


class AttachmentUnreadable(Exception):
    """A stored file this node cannot open: no such KEK configured, or altered bytes."""


def attachment_aad(digest: str) -> bytes:
    return b"attachments\x00" + digest.encode("ascii")


def write_sealed(sealer: Sealer, src: BinaryIO, target: Path, digest: str) -> None:
    """Seal `src` into `target` durably: a temporary file beside it, synced, renamed."""
    temporary = _temporary(target)
    with temporary.open("wb") as out:
        for piece in sealer.seal_stream(src, attachment_aad(digest)):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)


def _temporary(target: Path) -> Path:
    """A name beside `target` that no other writer uses (two completions of one upload
    may seal at once); it never matches a digest, so the store never lists it."""
    return target.with_name(f"{target.name}.{secrets.token_hex(8)}.sealing")


def is_sealed_file(path: Path) -> bool:
    with path.open("rb") as raw:
        return is_sealed_stream(raw.read(STREAM_MAGIC_BYTES))


def sealed_under(path: Path, digest: str) -> str | None:
    """The KEK id in the header of a sealed file; None for a file in the clear."""
    if not is_sealed_file(path):
        return None
    try:
        with path.open("rb") as raw:
            return read_stream_header(raw).kek_id
    except SealError as exc:
        if _is_clear(path, digest):
            return None
        raise AttachmentUnreadable(f"the stored file {digest} does not open: {exc}") from exc


def open_file(path: Path, digest: str, sealer: Sealer | None) -> BinaryIO:
    """The plaintext of the stored file at `path`, as a read-only stream."""
    if not is_sealed_file(path):
        return path.open("rb")
    if sealer is None:
        if _is_clear(path, digest):
            return path.open("rb")
        raise AttachmentUnreadable(
            f"the stored file {digest} is sealed and no KEK is configured to open it"
        )
    # The bytes served are read through the same descriptor as those checked: a file
    # renamed onto the path meanwhile (a rotation) does not change what is read.
    raw = path.open("rb")
    try:
        for _ in sealer.open_stream(raw, attachment_aad(digest)):
            pass  # every chunk authenticated before any byte is given out
    except SealError as exc:
        raw.close()
        if _is_clear(path, digest):
            return path.open("rb")
        raise AttachmentUnreadable(f"the stored file {digest} does not open: {exc}") from exc
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(OpenedFile(raw, sealer, digest), READ_BYTES)


def _is_clear(path: Path, digest: str) -> bool:
    """Whether the file holds its plaintext (a clear file that begins like a sealed one)."""
    from service.attachments.store import digest_of

    with path.open("rb") as raw:
        return digest_of(raw)[0] == digest


class OpenedFile(io.RawIOBase):
    """The plaintext of a sealed file, read chunk by chunk (each chunk authenticated
    again as it is read: a file altered since it was opened raises, never yields)."""

    def __init__(self, raw: BinaryIO, sealer: Sealer, digest: str) -> None:
        super().__init__()
        self._raw, self._sealer, self._digest = raw, sealer, digest
        self._chunks = self._start()
        self._buffer = b""
        self._position = 0

    def _start(self) -> Iterator[bytes]:
        self._raw.seek(0)
        return self._sealer.open_stream(self._raw, attachment_aad(self._digest))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Decrypted and skipped up to `offset` (a resumed transfer); not from the end."""
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a sealed file is not sought from its end")
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        if offset < self._position:
            self._chunks, self._buffer, self._position = self._start(), b"", 0
        while self._position < offset and self.read(min(offset - self._position, READ_BYTES)):
            pass
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
            except SealError as exc:
                raise AttachmentUnreadable(
                    f"the stored file {self._digest} does not open: {exc}"
                ) from exc
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self._position += size
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


def reseal(sealer: Sealer, path: Path, digest: str) -> Literal["sealed", "rewrapped"] | None:
    """Bring one stored file under the active KEK: seal a file in the clear, re-wrap the
    data key of one sealed under another KEK (its chunks are copied, not decrypted);
    None if it already is. Atomic: the new file replaces the old by one rename."""
    if not is_sealed_file(path) or _is_clear(path, digest):
        with path.open("rb") as clear:
            write_sealed(sealer, clear, path, digest)
        return "sealed"
    with path.open("rb") as raw:
        header = read_stream_header(raw)
        if header.kek_id == sealer.active:
            return None
        temporary = _temporary(path)
        with temporary.open("wb") as out:
            out.write(sealer.rewrap_stream_header(header))
            while block := raw.read(READ_BYTES):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    os.replace(temporary, path)
    return "rewrapped"
