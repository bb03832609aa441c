"""Where attachment bytes live: outside the message table, in a content-addressed store.

An upload is staged under a key of the caller's choosing (one per message and
attachment), appended to in order, synced to disk before its new length is reported,
and resumed from that length after any interruption, a crash included. Completing it
hashes the staged bytes in constant memory, checks them against the signed digest and
size, and moves them into the store under their digest with one atomic rename; bytes
already stored under that digest are not written again. `AttachmentStore` is the
interface; `FileStore` backs it with a directory, and an S3-compatible store can back
it the same way (a multipart upload as the staging, the digest as the object key).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from service.attachments.sealed import open_file, reseal, sealed_under, write_sealed
from service.privacy.sealing import Sealer
from service.protocol.b64 import b64url_encode
from service.protocol.problems import Problem
from service.protocol.receipts import DIGEST_PREFIX
from service.records.receipt import DIGEST_PATTERN

_DIGEST_RE: Final = re.compile(DIGEST_PATTERN)
_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The size of one read while hashing: memory use does not grow with the file.
READ_SIZE: Final = 1 << 20


@dataclass(frozen=True)
class Stored:
    """An attachment in the store: its digest and size, and whether this completion
    wrote it (False when the same bytes were stored before)."""

    digest: str
    size: int
    written: bool


class AttachmentStore(Protocol):
    def offset(self, key: str) -> int:
        """The number of bytes of upload `key` held durably (0 if none)."""
        ...

    def append(self, key: str, offset: int, chunks: Iterable[bytes], size: int) -> int:
        """Append `chunks` at `offset` to upload `key` of declared `size`; the new offset."""
        ...

    def complete(self, key: str, digest: str, size: int) -> Stored:
        """Check upload `key` against `digest` and `size` and store it under `digest`."""
        ...

    def staged(self, key: str) -> BinaryIO:
        """The staged bytes of upload `key`, for checks before `complete`."""
        ...

    def discard(self, key: str) -> None:
        """Forget upload `key` and its bytes."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """The stored bytes of `digest`, as a stream."""
        ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> bool:
        """Remove the bytes of `digest`; False if there were none."""
        ...


def digest_of(stream: BinaryIO) -> tuple[str, int]:
    """`sha-256:<base64url>` and the length of the stream's bytes, read in constant memory."""
    sha = hashlib.sha256()
    size = 0
    while block := stream.read(READ_SIZE):
        sha.update(block)
        size += len(block)
    return DIGEST_PREFIX + b64url_encode(sha.digest()), size


class FileStore:
    """`AttachmentStore` on a directory: `staging/<key>` and `objects/<xx>/<digest>`.

    Both live on one file system, so moving a checked upload into place is a rename.
    With a `sealer`, stored files are sealed (service/attachments/sealed.py); staged
    uploads are not, and are deleted once completed, discarded or expired.
    """

    def __init__(self, root: Path, sealer: Sealer | None = None) -> None:
        self.root = root
        self.sealer = sealer
        self._staging = root / "staging"
        self._objects = root / "objects"
        self._staging.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)

    # -- uploads -----------------------------------------------------------------------
    def _stage_path(self, key: str) -> Path:
        if _KEY_RE.fullmatch(key) is None:
            raise ValueError(f"not an upload key: {key!r}")
        return self._staging / key

    def offset(self, key: str) -> int:
        # A shared lock waits for a request still appending (one whose connection just
        # broke), so the offset reported is the one the next request must continue at.
        try:
            with self._stage_path(key).open("rb") as staged:
                fcntl.flock(staged.fileno(), fcntl.LOCK_SH)
                return os.fstat(staged.fileno()).st_size
        except FileNotFoundError:
            return 0

    def append(self, key: str, offset: int, chunks: Iterable[bytes], size: int) -> int:
        path = self._stage_path(key)
        with path.open("ab") as staged:
            _lock_exclusively(staged)
            held = staged.seek(0, os.SEEK_END)
            if offset != held:
                raise Problem(
                    "upload-offset",
                    f"the upload holds {held} bytes; continue at that offset",
                    headers={"Upload-Offset": str(held)},
                )
            written = held
            try:
                for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        raise Problem(
                            "attachment-size",
                            f"the attachment is declared as {size} bytes; more were sent",
                        )
                    staged.write(chunk)
            except Problem:
                # Nothing of a refused request is kept: the bytes held before it stay.
                staged.flush()
                staged.truncate(held)
                raise
            finally:
                # A broken request keeps what arrived (tus: only the rest is sent again).
                staged.flush()
                os.fsync(staged.fileno())
            return written

    def staged(self, key: str) -> BinaryIO:
        return self._stage_path(key).open("rb")

    def discard(self, key: str) -> None:
        self._stage_path(key).unlink(missing_ok=True)

    def complete(self, key: str, digest: str, size: int) -> Stored:
        path = self._stage_path(key)
        with path.open("rb") as staged:
            found, length = digest_of(staged)
        if length != size:
            raise Problem(
                "attachment-size", f"the attachment is declared as {size} bytes; {length} held"
            )
        if found != digest:
            self.discard(key)
            raise Problem(
                "attachment-digest",
                f"the bytes' digest is {found}, not the declared {digest}; send them again",
            )
        target = self._object_path(digest)
        if target.exists():
            self.discard(key)
            return Stored(digest, size, written=False)
        target.parent.mkdir(exist_ok=True)
        try:
            self._store(path, target, digest)
        except FileNotFoundError:
            if target.exists():  # a concurrent completion of the same upload moved it
                return Stored(digest, size, written=False)
            raise
        _sync_directory(target.parent)
        _sync_directory(self._staging)
        return Stored(digest, size, written=True)

    def _store(self, staged: Path, target: Path, digest: str) -> None:
        """Move checked bytes to `target`: sealed into it, then the staged copy deleted
        (a crash between leaves the staged copy to its expiry), or renamed as they are."""
        if self.sealer is None:
            os.replace(staged, target)
            return
        with staged.open("rb") as clear:
            write_sealed(self.sealer, clear, target, digest)
        staged.unlink()

    # -- stored bytes ------------------------------------------------------------------
    def _object_path(self, digest: str) -> Path:
        if _DIGEST_RE.fullmatch(digest) is None:
            raise ValueError(f"not a sha-256 digest: {digest!r}")
        name = digest.removeprefix(DIGEST_PREFIX)
        return self._objects / name[:2] / name

    def open(self, digest: str) -> BinaryIO:
        """The plaintext; AttachmentUnreadable if a sealed file does not open."""
        return open_file(self._object_path(digest), digest, self.sealer)

    def digests(self) -> Iterator[str]:
        """The digests of every stored file, in no set order."""
        for path in self._objects.glob("*/*"):
            if _DIGEST_RE.fullmatch(DIGEST_PREFIX + path.name) is not None:
                yield DIGEST_PREFIX + path.name

    def sealed_under(self, digest: str) -> str | None:
        """The id of the KEK the stored file is sealed under; None if it is in the clear."""
        return sealed_under(self._object_path(digest), digest)

    def reseal(self, digest: str) -> str | None:
        """Seal a file stored in the clear, or re-wrap one sealed under another KEK
        ("sealed", "rewrapped"); None if it is sealed under the active KEK."""
        if self.sealer is None:
            raise ValueError("no KEK is configured to seal under")
        return reseal(self.sealer, self._object_path(digest), digest)

    def exists(self, digest: str) -> bool:
        return self._object_path(digest).is_file()

    def delete(self, digest: str) -> bool:
        path = self._object_path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _sync_directory(path.parent)
        return True


def _lock_exclusively(staged: BinaryIO) -> None:
    """One request appends to an upload at a time, across processes too: a second one
    waits for the first to end (a broken connection ends it, or the idle timeout), then
    finds the offset moved and is answered with the new one, never interleaving bytes."""
    fcntl.flock(staged.fileno(), fcntl.LOCK_EX)


def _sync_directory(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
