"""A message queued while this process's delivery worker has room is leased by its
queueing and handed to the worker: no claim of its own, and still a lease like any other
(another worker never takes it while it holds, and takes it once it expires)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.clock import FixedClock
from service.config import load_config
from service.exchange.delivery import ClaimUnit, DeliveryWorker
from service.exchange.jobs import Job, Lease
from service.exchange.outbound import OutboundRequest, Queued, queue_outbound
from service.ledger.committer import Tx
from service.main import create_app
from service.protocol.problems import Problem
from tests.support.batches import Gate
from tests.support.nodes import CLIENT_TOKEN, Federation, example_body, outbox_statistics
from tests.unit.exchange.partner import FakePartner, envelope_of
from tests.unit.exchange.sender import Sender


def _request(**kw: Any) -> OutboundRequest:
    return OutboundRequest(
        "UZ:MIA",
        "statistics.migration-flows",
        "kz-uz-2019",
        "statistics",
        example_body("statistics.migration-flows"),
        **kw,
    )


@dataclass
class Courier:
    """A worker with room, as the queueing sees it; it keeps what it was handed."""

    owner: str = "worker-1"
    seconds: float = 60.0
    handed: list[Job] = field(default_factory=list)
    released: int = 0

    def reserve(self) -> Lease | None:
        return Lease(self.owner, self.seconds)

    def hand(self, job: Job) -> None:
        self.handed.append(job)

    def release(self) -> None:
        self.released += 1


async def _queueing(sender: Sender, courier: Any, req: OutboundRequest | None = None) -> Queued:
    """`POST /v1/outbox`'s queueing of `req` (a statistics dataset) with `courier`."""
    node = sender.node
    return await queue_outbound(
        node.outbound, node.committer, req or _request(), node.clock(), inline=True, courier=courier
    )


async def _queueing_behind_a_held_writer(
    sender: Sender, courier: Any, release: threading.Event
) -> tuple[asyncio.Task[Queued], Any]:
    """A queueing whose unit waits in the writer's queue behind a batch held until
    `release` is set; the queueing's task and the held batch's future."""
    entered = threading.Event()
    gate = sender.node.committer.submit(Gate(entered, release))
    assert entered.wait(10)  # the writer is held: the queueing waits in its queue
    request = asyncio.create_task(_queueing(sender, courier))
    await asyncio.sleep(0.05)
    return request, gate


def _queue(sender: Sender, courier: Any, req: OutboundRequest | None = None) -> Queued:
    return asyncio.run(_queueing(sender, courier, req))


def _claim(sender: Sender, owner: str) -> list[Job]:
    async def claim() -> list[Job]:
        async with sender.transport() as transport:
            return sender.worker(transport, owner=owner)._claim()

    return asyncio.run(claim())


def test_a_message_queued_with_a_free_slot_is_leased_by_its_queueing_and_handed_over(
    sender: Sender,
) -> None:
    courier = Courier()
    queued = _queue(sender, courier)
    assert queued.handed
    row = sender.outbox(queued.message_id)
    # The lease a claim by the same worker would have written.
    assert (row["state"], row["lease_owner"], row["lease_until"]) == (
        "pending",
        "worker-1",
        sender.clock() + sender.settings.lease_seconds,
    )
    [job] = courier.handed
    [copy] = sender.copies(queued.message_id)
    assert (job.pk, job.message_id, job.recipient, job.attempts) == (
        sender.pk(queued.message_id),
        queued.message_id,
        "UZ:MIA",
        0,
    )
    assert [(c.version, c.iat, c.digest, c.jws) for c in job.copies] == [
        (1, copy["iat"], copy["digest"], copy["jws"])
    ]
    # The envelope it was signed from rides along: the worker does not parse its bytes.
    assert job.copies[0].signed is not None
    assert job.copies[0].env == envelope_of(copy["jws"])
    assert _claim(sender, "worker-2") == [], "claimed while its queueing's lease held"


def test_a_message_queued_without_a_courier_is_left_unleased_for_the_claim(
    sender: Sender,
) -> None:
    queued = _queue(sender, None)
    assert not queued.handed
    row = sender.outbox(queued.message_id)
    assert (row["lease_owner"], row["lease_until"]) == (None, None)
    assert [job.message_id for job in _claim(sender, "worker-2")] == [queued.message_id]


def test_a_refused_queueing_takes_no_lease_and_gives_its_reservation_back(
    sender: Sender,
) -> None:
    courier = Courier()
    unknown = "01900000-0000-7000-8000-000000000000"
    with pytest.raises(Problem, match="reply_to"):
        _queue(sender, courier, _request(reply_to=unknown))
    assert (courier.handed, courier.released) == ([], 1)


def test_a_queueing_cancelled_while_its_unit_waits_still_hands_over_the_committed_job(
    sender: Sender,
) -> None:
    courier = Courier()
    release = threading.Event()

    async def cancel_then_commit() -> None:
        request, gate = await _queueing_behind_a_held_writer(sender, courier, release)
        request.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await request
        await asyncio.wrap_future(gate)
        for _ in range(500):
            if courier.handed:
                return
            await asyncio.sleep(0.01)

    asyncio.run(cancel_then_commit())
    [job] = courier.handed
    assert courier.released == 0
    assert sender.outbox(job.message_id)["lease_owner"] == "worker-1"


def test_a_lease_taken_at_queueing_and_never_sent_expires_and_another_worker_delivers_it_once(
    sender: Sender,
) -> None:
    # The process dies after its queueing committed the leased row, before sending.
    queued = _queue(sender, Courier(owner="crashed"))
    assert sender.deliver() == 0, "another worker sent a message its queueing had leased"
    sender.clock.advance(sender.settings.lease_seconds + 1)
    assert sender.deliver() == 1
    assert sender.deliver() == 0
    assert sender.partner.posted_ids() == Counter({queued.message_id: 1})
    assert sender.outbox(queued.message_id)["state"] == "delivered"
    assert sender.attempt_outcomes(queued.message_id) == ["delivered"]


def test_a_worker_that_is_not_running_takes_no_lease(sender: Sender) -> None:
    async def reserve() -> Lease | None:
        async with sender.transport() as transport:
            return sender.worker(transport).reserve()

    assert asyncio.run(reserve()) is None


def test_a_full_worker_takes_no_lease_and_every_message_is_delivered_once(
    sender: Sender,
) -> None:
    """Concurrency 1: one message in flight and one waiting fill the worker; the third
    is queued unleased, claimed once there is room, and each is posted exactly once."""
    sender.settings = replace(sender.settings, concurrency=1, poll_interval=0.05)
    opened = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        await opened.wait()
        return sender.partner.handle(request)

    async def scenario() -> tuple[list[Queued], list[str | None]]:
        stopping = asyncio.Event()
        async with httpx.MockTransport(held) as transport:
            worker: DeliveryWorker = sender.worker(transport)
            running = asyncio.create_task(worker.run_forever(stopping))
            await asyncio.sleep(0)  # the worker starts and takes the slots it is given
            queued = []
            for _ in range(3):
                queued.append(await _queueing(sender, worker))
                await asyncio.sleep(0.01)
            owners = [sender.outbox(q.message_id)["lease_owner"] for q in queued]
            worker.wake()
            opened.set()
            for _ in range(500):
                if all(sender.outbox(q.message_id)["state"] == "delivered" for q in queued):
                    break
                await asyncio.sleep(0.01)
            stopping.set()
            worker.wake()
            await running
        return queued, owners

    queued, owners = asyncio.run(scenario())
    assert [q.handed for q in queued] == [True, True, False]
    assert owners == ["worker-1", "worker-1", None]
    ids = [q.message_id for q in queued]
    assert sender.partner.posted_ids() == Counter(dict.fromkeys(ids, 1))
    assert all(sender.attempt_outcomes(i) == ["delivered"] for i in ids)


def test_a_message_posted_to_the_outbox_is_sent_by_the_running_worker_without_a_claim(
    federation: Federation,
    clock: FixedClock,
    partner: FakePartner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claimed: list[str] = []
    claim = ClaimUnit.run

    def spied(unit: ClaimUnit, tx: Tx) -> list[Job]:
        jobs = claim(unit, tx)
        claimed.extend(job.message_id for job in jobs)
        return jobs

    monkeypatch.setattr(ClaimUnit, "run", spied)
    app = create_app(
        load_config(federation.write_config()),
        clock=clock,
        run_witnessing=False,
        transport=partner.transport,
    )
    client_auth = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    with TestClient(app) as client:
        resp = client.post("/v1/outbox", json=outbox_statistics(), headers=client_auth)
        assert resp.status_code == 202, resp.text
        message_id = resp.json()["id"]
        assert resp.json()["status"] == "queued"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = client.get(f"/v1/outbox/{message_id}", headers=client_auth).json()
            if status["status"] == "delivered":
                break
            time.sleep(0.02)
    assert status["status"] == "delivered"
    assert partner.posted_ids() == Counter({message_id: 1})
    assert claimed == [], "the message was claimed, not handed over by its queueing"


def test_a_stopping_worker_gives_back_the_leases_of_jobs_it_never_started(
    sender: Sender,
) -> None:
    """Concurrency 1: the first message is in flight when the worker stops, the second
    handed over and waiting. The first is delivered; the second's lease is ended, so
    another worker sends it at once instead of after `lease_seconds`."""
    sender.settings = replace(sender.settings, concurrency=1, poll_interval=0.05)
    opened = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        await opened.wait()
        return sender.partner.handle(request)

    async def scenario() -> list[Queued]:
        stopping = asyncio.Event()
        async with httpx.MockTransport(held) as transport:
            worker: DeliveryWorker = sender.worker(transport)
            running = asyncio.create_task(worker.run_forever(stopping))
            await asyncio.sleep(0)
            queued = []
            for _ in range(2):
                queued.append(await _queueing(sender, worker))
                await asyncio.sleep(0.01)
            for _ in range(500):
                if sender.partner.posted_ids():
                    break
                await asyncio.sleep(0.01)
            stopping.set()
            worker.wake()
            opened.set()
            await running
        return queued

    first, second = asyncio.run(scenario())
    assert (first.handed, second.handed) == (True, True)
    assert sender.outbox(first.message_id)["state"] == "delivered"
    row = sender.outbox(second.message_id)
    assert (row["state"], row["lease_owner"], row["lease_until"]) == ("pending", None, None)
    assert sender.partner.posted_ids() == Counter({first.message_id: 1})
    # No clock advance: the message is due for any worker now.
    assert sender.deliver() == 1
    assert sender.partner.posted_ids() == Counter({first.message_id: 1, second.message_id: 1})


def test_a_queueing_committed_after_the_worker_stopped_gives_its_lease_back(
    sender: Sender,
) -> None:
    """The queueing reserved a slot before the stop, and its batch waited on a slow
    writer until the worker had stopped and given back what it held: its committed
    job is not kept by a worker that will never send it, its lease is ended at once."""
    sender.settings = replace(sender.settings, poll_interval=30.0)
    release = threading.Event()

    async def scenario() -> Queued:
        stopping = asyncio.Event()
        async with httpx.MockTransport(sender.partner.handle) as transport:
            worker: DeliveryWorker = sender.worker(transport)
            running = asyncio.create_task(worker.run_forever(stopping))
            await asyncio.sleep(0.05)
            request, gate = await _queueing_behind_a_held_writer(sender, worker, release)
            stopping.set()
            worker.wake()
            await running  # stopped, with nothing of its own to give back
            release.set()
            await asyncio.wrap_future(gate)
            queued = await request
            await worker.drain()
        return queued

    queued = asyncio.run(scenario())
    assert queued.handed
    row = sender.outbox(queued.message_id)
    assert (row["state"], row["lease_owner"], row["lease_until"]) == ("pending", None, None)
    assert sender.partner.posted_ids() == Counter()
    # No clock advance: the message is due for any worker now.
    assert sender.deliver() == 1
