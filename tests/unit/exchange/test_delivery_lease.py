"""A long attachment transfer keeps its delivery's lease, and stops once another worker
holds the message: no two workers ever send one message at once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest

from service.attachments.store import READ_SIZE, FileStore, digest_of
from service.exchange.attempts import RenewUnit
from service.exchange.transfer import AwaitingAnswer, Transfer, TransferFailed, Upload
from tests.unit.exchange.sender import Sender


def claimed(sender: Sender, owner: str = "worker-1") -> int:
    """Queue a message and let `owner` claim it; its outbox key."""
    message_id = sender.queue()

    async def claim() -> int:
        async with sender.transport() as transport:
            [job] = sender.worker(transport, owner=owner)._claim()
            return job.pk

    pk = asyncio.run(claim())
    assert sender.pk(message_id) == pk
    return pk


def lease_until(sender: Sender, pk: int) -> float:
    from sqlalchemy import select

    from service.db.tables import outbox

    with sender.node.engines.reader.connect() as conn:
        value = conn.execute(select(outbox.c.lease_until).where(outbox.c.message_pk == pk))
        return float(value.scalar_one())


def test_the_holder_renews_its_lease_and_another_worker_cannot(sender: Sender) -> None:
    pk = claimed(sender)
    lease = sender.settings.lease_seconds
    sender.clock.advance(lease / 2)
    renewed = sender.node.committer.run_sync(RenewUnit(pk, "worker-1", lease))
    stranger = sender.node.committer.run_sync(RenewUnit(pk, "worker-2", lease))
    assert (renewed, stranger) == (True, False)
    assert lease_until(sender, pk) == sender.clock() + lease


def test_the_keeper_renews_once_a_third_of_the_lease_has_passed(sender: Sender) -> None:
    pk = claimed(sender)
    lease = sender.settings.lease_seconds
    first = lease_until(sender, pk)

    async def keep_at(advances: list[float]) -> list[float]:
        async with sender.transport() as transport:
            keep = sender.worker(transport).lease_keeper(pk)
            seen = []
            for step in advances:
                sender.clock.advance(step)
                assert await keep()
                seen.append(lease_until(sender, pk))
            return seen

    seen = asyncio.run(keep_at([1.0, lease / 3, 1.0]))
    assert seen[0] == first  # a second in: nothing written
    assert seen[1] == sender.clock() - 1.0 + lease  # a third in: renewed
    assert seen[2] == seen[1]


def test_the_keeper_says_so_once_another_worker_took_the_message(sender: Sender) -> None:
    pk = claimed(sender)
    lease = sender.settings.lease_seconds

    async def transfer_outlasting_the_lease() -> tuple[list[int], bool]:
        async with sender.transport() as transport:
            keep = sender.worker(transport).lease_keeper(pk)
            sender.clock.advance(lease + 1)  # a block stalled past the lease ...
            taken = [job.pk for job in sender.worker(transport, owner="worker-2")._claim()]
            return taken, await keep()  # ... and the message was taken meanwhile

    assert asyncio.run(transfer_outlasting_the_lease()) == ([pk], False)


def test_a_transfer_stops_before_the_next_block_once_the_lease_is_lost(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    data = bytes(range(256)) * (3 * READ_SIZE // 256)
    digest, _ = digest_of(io.BytesIO(data))
    store.append("k", 0, [data], len(data))
    store.complete("k", digest, len(data))
    asked: list[bool] = []

    async def keep() -> bool:
        asked.append(not asked)  # held for the first block, lost before the second
        return asked[-1]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204, headers={"Upload-Offset": str(len(data))})

    async def send() -> None:
        transfer = Transfer(
            httpx.MockTransport(handler), "http://partner.test", store, 5.0, keep=keep
        )
        upload = Upload(digest, f"/v1/uploads/{digest}", 0)
        await transfer.send_all(AwaitingAnswer("token", [upload]), {digest: len(data)})

    with pytest.raises(TransferFailed, match="lease passed to another worker"):
        asyncio.run(send())
    assert asked == [True, False]  # no block after the lease was lost
