"""The agency's outbound files (docs/protocol.md, 'The agency's side'): a file is handed
to the node first (`POST /v1/files`), stored under its digest, and named by the body
of an outbound message second. `FileUnit` records a stored file; `check_held` is the
outbox's check that every file a body names is held as named."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import Connection, bindparam, select

from service.attachments.limits import Declared
from service.attachments.store import AttachmentStore
from service.attachments.uploads import Context, append_stream, finish
from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.db.tables import files
from service.ledger.committer import Tx
from service.protocol.b64 import b64url_encode
from service.protocol.problems import Problem
from service.protocol.receipts import DIGEST_PREFIX


@dataclass(frozen=True)
class HeldFile:
    digest: str
    size: int
    media_type: str


async def store_upload(
    store: AttachmentStore,
    chunks: AsyncIterator[bytes],
    media_type: str,
    *,
    max_bytes: int,
    idle: float,
) -> HeldFile:
    """Stream a file into the store, check its bytes are of `media_type`; what is held."""
    key = "file-" + secrets.token_urlsafe(24)
    sha = hashlib.sha256()

    async def hashed() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            sha.update(chunk)
            yield chunk

    try:
        size = await append_stream(store, key, 0, hashed(), max_bytes, idle=idle)
    except Problem as problem:
        store.discard(key)
        if problem.code == "attachment-size":
            raise Problem(
                "attachment-too-large", f"a file may have at most {max_bytes} bytes"
            ) from None
        raise
    except BaseException:
        store.discard(key)
        raise
    if size == 0:
        store.discard(key)
        raise Problem("invalid-parameters", "the file is empty")
    digest = DIGEST_PREFIX + b64url_encode(sha.digest())
    item = Declared(0, digest, size, media_type, "file")
    ctx = Context("", {}, frozenset({media_type}), 0, 32, 2_000_000)
    await asyncio.to_thread(finish, store, key, item, ctx)
    return HeldFile(digest, size, media_type)


@dataclass
class FileUnit:
    """Record a stored file (once per digest) and audit its storing."""

    held: HeldFile
    client: str
    needs_savepoint: ClassVar[bool] = True

    def run(self, tx: Tx) -> HeldFile:
        row = tx.conn.execute(select(files).where(files.c.digest == self.held.digest)).first()
        if row is None:
            tx.conn.execute(
                files.insert().values(
                    digest=self.held.digest,
                    size=self.held.size,
                    media_type=self.held.media_type,
                    stored_at=tx.now,
                )
            )
        tx.audit.append(
            AuditEvent(
                ev.FILE_STORED,
                "stored" if row is None else "duplicate",
                detail={
                    "attachment": self.held.digest,
                    "size": self.held.size,
                    "media_type": self.held.media_type,
                    "client": self.client,
                },
            )
        )
        if row is not None:
            return HeldFile(row.digest, int(row.size), row.media_type)
        return self.held

    def refused(self, tx: Tx, problem: Problem) -> None:
        """Nothing was recorded; the client sees the problem."""


# Built once (it runs under the writer's lock for each outbound message with files).
_HELD = select(files).where(files.c.digest.in_(bindparam("digests", expanding=True)))


def check_held(conn: Connection, store: AttachmentStore, items: Sequence[Declared]) -> None:
    """Every file the body names must be held with the size and media type it names."""
    if not items:
        return
    digests = sorted({i.digest for i in items})
    rows = {r.digest: r for r in conn.execute(_HELD, {"digests": digests})}
    for item in items:
        row = rows.get(item.digest)
        if row is None or not store.exists(item.digest):
            raise Problem(
                "invalid-parameters",
                f"attachment {item.position}: the node holds no file {item.digest}; "
                "hand it over with POST /v1/files first",
            )
        if int(row.size) != item.size or row.media_type != item.media_type:
            raise Problem(
                "invalid-parameters",
                f"attachment {item.position}: the file {item.digest} is {row.size} bytes of "
                f"{row.media_type}, not {item.size} bytes of {item.media_type}",
            )
