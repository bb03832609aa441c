"""Moving attachment bytes into the store: a request's body streamed into a staged
upload in constant memory, and the checks of a complete upload before it is stored
(docs/protocol.md, 'The transfer', steps 3 and 4).

Every write and read of attachment bytes goes through the `AttachmentStore` given
here, so that a layer wrapping the store (sealing at rest, say) sees them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

from service.attachments.limits import Declared
from service.attachments.media import matches_declared
from service.attachments.store import AttachmentStore, Stored
from service.protocol import jsonstrict
from service.protocol.problems import Problem
from service.records.registry import validate_body
from service.records.statistics import OBSERVATIONS_MEDIA_TYPE

# Bytes handed from the event loop to the writing thread at once: the most a transfer
# holds in memory, whatever the size of the file.
BLOCK_SIZE: Final = 1 << 20
STATISTICS: Final = "statistics.migration-flows"


async def _next_block(chunks: AsyncIterator[bytes], idle: float) -> bytes:
    """Up to BLOCK_SIZE bytes of the stream (fewer at its end); each block must arrive
    within `idle` seconds."""
    block = bytearray()
    try:
        async with asyncio.timeout(idle):
            while len(block) < BLOCK_SIZE:
                try:
                    block += await anext(chunks)
                except StopAsyncIteration:
                    break
    except TimeoutError:
        raise Problem(
            "request-timeout", f"the upload's bytes did not arrive within {idle:g} s"
        ) from None
    return bytes(block)


async def append_stream(
    store: AttachmentStore,
    key: str,
    offset: int,
    chunks: AsyncIterator[bytes],
    size: int,
    *,
    idle: float = 30.0,
) -> int:
    """Append an async stream of bytes at `offset` to upload `key`; the new offset.

    The store writes in a worker thread, pulling one block at a time from the event
    loop, so neither side ever holds more than a block. A stream that stalls for
    `idle` seconds is cut off (what arrived is kept). A stream of one block (most
    attachments) is read first and written in one step, without the thread pulling."""
    first = await _next_block(chunks, idle)
    if len(first) < BLOCK_SIZE:
        # The whole stream (an empty one too: the store then checks the offset alone).
        return await asyncio.to_thread(store.append, key, offset, (first,), size)
    loop = asyncio.get_running_loop()

    def blocks() -> Iterator[bytes]:
        yield first
        while block := asyncio.run_coroutine_threadsafe(_next_block(chunks, idle), loop).result():
            yield block

    return await asyncio.to_thread(store.append, key, offset, blocks(), size)


@dataclass(frozen=True)
class Context:
    """What the checks of a complete file need to know of its message."""

    msg_type: str
    body: dict[str, Any]
    allowed: frozenset[str]
    max_observations: int
    max_depth: int
    max_members: int


def finish(store: AttachmentStore, key: str, item: Declared, ctx: Context) -> Stored:
    """Check complete upload `key` against its declaration and store it (blocking).

    A failed file is discarded whole and the refusal raised: the media type detected
    from the bytes (never the name) must be the declared one and one the partner may
    send; a statistics dataset must be valid; the digest and size must be the signed
    ones (checked by the store as it moves the file into place)."""
    try:
        _check_content(store, key, item, ctx)
    except Problem:
        store.discard(key)
        raise
    return store.complete(key, item.digest, item.size)


def _check_content(store: AttachmentStore, key: str, item: Declared, ctx: Context) -> None:
    if item.media_type not in ctx.allowed:
        raise Problem(
            "attachment-media-type", f"{item.media_type} is not a media type allowed here"
        )
    with store.staged(key) as staged:
        if item.media_type == OBSERVATIONS_MEDIA_TYPE:
            data = staged.read()
        elif matches_declared(staged, item.media_type):
            return
        else:
            raise Problem(
                "attachment-media-type",
                f"attachment {item.position} is declared as {item.media_type}, "
                "but its bytes are not of that type",
            )
    check_json(data, item, ctx)


def check_json(data: bytes, item: Declared, ctx: Context) -> None:
    """An application/json attachment: strict JSON, and for a statistics message its
    observations, validated exactly as inline ones (paths as if inline)."""
    try:
        value = jsonstrict.loads(data, max_depth=ctx.max_depth, max_members=ctx.max_members)
    except Problem as exc:
        raise Problem(
            "attachment-media-type",
            f"attachment {item.position} is declared as application/json but is not "
            f"strict JSON: {exc.detail}",
        ) from None
    if ctx.msg_type == STATISTICS:
        inline = {**ctx.body, "observations": value, "attachments": []}
        validate_body(STATISTICS, inline, max_observations=ctx.max_observations)
