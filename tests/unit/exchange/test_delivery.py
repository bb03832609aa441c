"""The delivery worker against a fake partner: receipts, refusals, retries, leases, re-signing."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace

import httpx
import pytest

from service.audit import queries, store
from service.audit.stored import check_stored
from service.clock import FixedClock
from service.config import load_config
from service.exchange.attempts import AttemptResult, AttemptUnit
from service.exchange.delivery import MAX_ANSWER_BYTES, Job
from service.exchange.outbound import RequeueUnit
from service.privacy.atrest import PLAINTEXT
from service.protocol.receipts import message_digest
from service.runtime import Node, build_node
from tests.support.batches import in_one_batch
from tests.support.nodes import NOW, Federation
from tests.unit.exchange import partner as answers
from tests.unit.exchange.partner import Answer, FakePartner, envelope_of
from tests.unit.exchange.sender import SEED, Sender

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_message_is_delivered_with_the_partners_verified_receipt(sender: Sender) -> None:
    message_id = sender.queue()
    assert sender.deliver() == 1
    row = sender.outbox(message_id)
    assert (row["state"], row["status"], row["attempts"]) == ("delivered", "delivered", 1)
    assert bytes(row["receipt"]) == sender.partner.accepted[message_id][1]
    assert sender.attempt_outcomes(message_id) == ["delivered"]
    [received] = sender.audit("receipt.received", message_id)
    assert received["outcome"] == "verified"
    assert received["digest"] == message_digest(bytes(row["receipt"]))
    assert received["detail"]["message_digest"] == row["digest"]
    assert received["detail"]["partner_audit_index"] == 0


@pytest.mark.parametrize(
    "bad_receipt",
    [
        pytest.param(lambda _fed: answers.receipt_with_wrong_digest, id="wrong-digest"),
        pytest.param(lambda fed: answers.receipt_signed_by(fed.kg), id="signed-by-another-party"),
        pytest.param(lambda _fed: answers.garbage_receipt, id="unsigned-garbage"),
    ],
)
def test_receipt_that_does_not_verify_is_not_a_delivery_and_is_retried(
    sender: Sender, federation: Federation, bad_receipt: Callable[[Federation], Answer]
) -> None:
    sender.partner.then(bad_receipt(federation))
    message_id = sender.queue()
    sender.deliver()
    row = sender.outbox(message_id)
    assert (row["state"], row["status"], row["receipt"]) == ("pending", "queued", None)
    assert sender.attempts(message_id)[0]["error"].startswith("bad-receipt")
    assert sender.audit("receipt.received", message_id) == []
    sender.clock.set(row["next_attempt_at"])
    sender.deliver()
    assert sender.outbox(message_id)["state"] == "delivered"
    assert sender.attempt_outcomes(message_id) == ["retry", "delivered"]


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "malformed"), (401, "unknown-key"), (403, "forbidden"), (422, "schema")],
)
def test_4xx_refusal_is_final_and_never_retried(sender: Sender, status: int, code: str) -> None:
    sender.partner.then(answers.refuse(status, code))
    message_id = sender.queue()
    sender.deliver()
    sender.clock.advance(86_400)
    assert sender.deliver() == 0
    row = sender.outbox(message_id)
    assert (row["state"], row["status"], row["attempts"]) == ("failed", "refused", 1)
    assert len(sender.partner.posts) == 1
    [attempt] = sender.audit("delivery.attempt", message_id)
    assert (attempt["outcome"], attempt["code"]) == ("refused", code)
    assert attempt["detail"]["http_status"] == status


def test_server_and_transport_errors_back_off_exponentially_with_jitter(sender: Sender) -> None:
    sender.partner.then(
        answers.unavailable(503),
        answers.connection_refused,
        answers.unavailable(500),
        answers.connection_refused,
    )
    message_id = sender.queue()
    replica = random.Random(SEED)
    for attempt in range(1, 5):
        sent_at = sender.clock()
        sender.deliver()
        due = sender.outbox(message_id)["next_attempt_at"]
        base = 2 ** (attempt - 1)
        assert sent_at + 0.5 * base <= due < sent_at + 1.5 * base
        assert due == pytest.approx(sent_at + base * (0.5 + replica.random()))
        sender.clock.set(due - 0.001)
        assert sender.deliver() == 0, "claimed before it was due"
        sender.clock.set(due)
    sender.deliver()
    assert sender.attempt_outcomes(message_id) == ["retry"] * 4 + ["delivered"]


@pytest.mark.parametrize(("status", "retry_after"), [(503, "120"), (429, "30")])
def test_retry_after_is_honoured(sender: Sender, status: int, retry_after: str) -> None:
    sender.partner.then(answers.unavailable(status, retry_after))
    message_id = sender.queue()
    sender.deliver()
    assert sender.outbox(message_id)["next_attempt_at"] == NOW + int(retry_after)


def test_retry_after_as_an_http_date_is_honoured(sender: Sender) -> None:
    sender.partner.then(answers.unavailable(503, "Wed, 18 Nov 2026 11:10:00 GMT"))
    message_id = sender.queue()
    sender.deliver()
    # NOW is 2026-11-18T11:06:40Z: the partner asked for 200 s.
    assert sender.outbox(message_id)["next_attempt_at"] == NOW + 200


def test_crash_mid_send_is_completed_by_another_worker_with_the_same_bytes(
    sender: Sender,
) -> None:
    message_id = sender.queue()

    async def claim_post_and_crash() -> list[Job]:
        async with sender.transport() as transport:
            crashed = sender.worker(transport, owner="crashed")
            jobs = crashed._claim()
            for job in jobs:
                partner = sender.node.registry.partner(job.recipient)
                assert partner is not None
                await crashed._post(partner, job.copies[-1], job.pk)
            return jobs  # never recorded: the process died here

    [job] = asyncio.run(claim_post_and_crash())
    assert sender.deliver() == 0, "claimed while another worker held the lease"
    sender.clock.advance(sender.settings.lease_seconds + 1)
    assert sender.deliver() == 1
    first, second = sender.partner.posts
    assert first == second == job.copies[-1].jws
    assert len(sender.partner.accepted) == 1
    row = sender.outbox(message_id)
    assert (row["state"], bytes(row["receipt"])) == (
        "delivered",
        sender.partner.accepted[message_id][1],
    )
    assert sender.attempt_outcomes(message_id) == ["delivered"]


def test_attempt_recorded_after_its_lease_expired_leaves_the_new_holder_in_charge(
    sender: Sender,
) -> None:
    message_id = sender.queue()

    async def overtaken() -> None:
        async with sender.transport() as transport:
            slow = sender.worker(transport, owner="slow")
            [job] = slow._claim()
            sender.clock.advance(sender.settings.lease_seconds + 1)
            assert len(sender.worker(transport, owner="fresh")._claim()) == 1
            late = AttemptResult("retry", 503, "unavailable", "partner busy")
            await slow._record(job, late, job.copies[-1], sender.clock())

    asyncio.run(overtaken())
    row = sender.outbox(message_id)
    assert (row["state"], row["lease_owner"]) == ("pending", "fresh")
    assert row["lease_until"] == sender.clock() + sender.settings.lease_seconds
    assert sender.attempt_outcomes(message_id) == ["retry"]


def test_attempt_records_its_error_and_how_long_the_post_took(sender: Sender) -> None:
    sender.partner.then(answers.unavailable(503))
    message_id = sender.queue()
    sender.deliver()
    [attempt] = sender.attempts(message_id)
    assert attempt["error"].startswith("unavailable: ")
    assert attempt["duration_ms"] > 0


def test_message_older_than_half_the_skew_is_resigned_and_the_older_copy_kept(
    sender: Sender,
) -> None:
    message_id = sender.queue()
    sender.clock.advance(sender.settings.resign_after + 1)
    sender.deliver()
    [posted] = sender.partner.posts
    assert envelope_of(posted).iat == NOW + sender.settings.resign_after + 1
    assert envelope_of(posted).id == message_id
    old, new = sender.copies(message_id)
    assert (old["version"], old["iat"], new["version"]) == (1, NOW, 2)
    assert new["jws"] == posted
    assert envelope_of(old["jws"]).body == envelope_of(posted).body
    assert sender.outbox(message_id)["state"] == "delivered"


def test_message_younger_than_half_the_skew_is_sent_as_first_signed(sender: Sender) -> None:
    message_id = sender.queue()
    sender.clock.advance(sender.settings.resign_after - 1)
    sender.deliver()
    [copy] = sender.copies(message_id)
    assert sender.partner.posts == [copy["jws"]]


def test_conflict_after_resigning_recovers_the_receipt_with_the_older_copy(
    sender: Sender,
) -> None:
    sender.partner.then(answers.accept_then_lose_response)
    message_id = sender.queue()
    sender.deliver()  # the partner stored copy 1; its receipt was lost
    sender.clock.advance(sender.settings.resign_after + 1)
    sender.deliver()  # copy 2 -> 409 -> copy 1 again -> 200 with the original receipt
    first, fresh, again = sender.partner.posts
    assert (again, envelope_of(fresh).iat) == (first, NOW + sender.settings.resign_after + 1)
    row = sender.outbox(message_id)
    digest, receipt = sender.partner.accepted[message_id]
    assert (row["state"], bytes(row["receipt"]), row["digest"]) == ("delivered", receipt, digest)
    [received] = sender.audit("receipt.received", message_id)
    assert received["detail"]["message_digest"] == digest == message_digest(first)
    assert sender.attempt_outcomes(message_id) == ["retry", "delivered"]


def test_transient_error_while_recovering_an_older_copy_is_retried(sender: Sender) -> None:
    sender.partner.then(answers.accept_then_lose_response)
    message_id = sender.queue()
    sender.deliver()
    sender.clock.advance(sender.settings.resign_after + 1)
    sender.partner.then(answers.FakePartner.handle_honestly, answers.connection_refused)
    sender.deliver()  # copy 2 -> 409 -> copy 1 -> connection refused
    row = sender.outbox(message_id)
    assert (row["state"], row["status"]) == ("pending", "queued")
    sender.clock.set(row["next_attempt_at"])
    sender.deliver()
    assert sender.outbox(message_id)["state"] == "delivered"
    assert sender.attempt_outcomes(message_id) == ["retry", "retry", "delivered"]


def test_conflict_with_no_older_copy_is_final(sender: Sender) -> None:
    sender.partner.then(answers.refuse(409, "conflict"))
    message_id = sender.queue()
    sender.deliver()
    row = sender.outbox(message_id)
    assert (row["state"], row["status"]) == ("failed", "refused")
    assert len(sender.partner.posts) == 1


def test_every_attempt_is_audited_with_its_status_and_copy(sender: Sender) -> None:
    sender.partner.then(answers.unavailable(502), answers.connection_refused)
    message_id = sender.queue()
    for _ in range(3):
        sender.deliver()
        sender.clock.advance(10)
    entries = sender.audit("delivery.attempt", message_id)
    assert [(e["outcome"], e["detail"].get("http_status")) for e in entries] == [
        ("retry", 502),
        ("retry", None),
        ("delivered", 201),
    ]
    assert [e["detail"]["attempt"] for e in entries] == [1, 2, 3]
    assert all(e["to"] == "UZ:MIA" and e["digest"].startswith("sha-256:") for e in entries)


# -- several workers ------------------------------------------------------------------
@pytest.fixture
def second_node(federation: Federation, clock: FixedClock, kz_node: Node) -> Iterator[Node]:
    """Another process's view of the same database: its own engines and writer."""
    node = build_node(
        load_config(federation.write_config()), clock=clock, migrate_on_start=False, record=False
    )
    yield node
    node.close()


def test_workers_claiming_at_the_same_instant_never_share_a_message(
    sender: Sender, second_node: Node
) -> None:
    for _ in range(40):
        sender.queue()
    sender.settings = replace(sender.settings, concurrency=5)
    transport = sender.transport()
    workers = [
        sender.worker(transport, owner="a"),
        sender.worker(transport, node=second_node, owner="b"),
    ]
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claim(name: str, index: int) -> None:
        barrier.wait()
        claimed[name].extend(job.pk for job in workers[index]._claim())

    for _ in range(4):
        threads = [threading.Thread(target=claim, args=(n, i)) for i, n in enumerate("ab")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    asyncio.run(transport.aclose())
    assert set(claimed["a"]).isdisjoint(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == len(set(claimed["a"] + claimed["b"])) == 40


@POSTGRES_ONLY
def test_two_workers_on_separate_engines_post_each_message_exactly_once(
    sender: Sender, second_node: Node
) -> None:
    ids = [sender.queue() for _ in range(30)]
    sender.settings = replace(sender.settings, concurrency=4)

    async def run_both() -> None:
        async with sender.transport() as transport:
            a = sender.worker(transport, owner="a")
            b = sender.worker(transport, node=second_node, owner="b")
            for _ in range(30):
                done = await asyncio.gather(a.run_once(), b.run_once())
                if sum(done) == 0:
                    return

    asyncio.run(run_both())
    assert sender.partner.posted_ids() == Counter(dict.fromkeys(ids, 1))
    assert {sender.outbox(i)["state"] for i in ids} == {"delivered"}
    assert all(sender.attempt_outcomes(i) == ["delivered"] for i in ids)


def _attempt(sender: Sender, job: Job, result: AttemptResult, owner: str) -> AttemptUnit:
    return AttemptUnit(
        job_pk=job.pk,
        message_id=job.message_id,
        recipient=job.recipient,
        attempt=job.attempts + 1,
        result=result,
        copy=job.copies[-1],
        max_attempts=sender.settings.max_attempts,
        next_at=sender.clock(),
        owner=owner,
        stored=PLAINTEXT.message(job.copies[-1].jws, "KZ:MIA", job.message_id)
        if result.outcome == "delivered"
        else {},
    )


def test_a_row_whose_attempt_is_recorded_in_the_batch_is_not_claimed_in_it(
    sender: Sender,
) -> None:
    message_id = sender.queue()
    worker = sender.worker(sender.transport(), owner="w")
    [job] = worker._claim()
    # The lease ran out while the partner answered, so the row is due again.
    sender.clock.advance(sender.settings.lease_seconds + 1)
    retry_now = _attempt(sender, job, AttemptResult("retry", 503, "unavailable", None), "w")
    attempt, claim = in_one_batch(sender.node.committer, retry_now, worker._claim_unit(8))
    assert attempt.result() == "retry"
    # The attempt's writes land at the end of the batch: the claim beside it must not
    # lease the row only to have its lease cleared by them.
    assert claim.result() == []
    assert [j.message_id for j in worker._claim()] == [message_id]


def test_a_failure_and_its_retry_by_an_operator_in_one_batch_apply_in_order(
    sender: Sender,
) -> None:
    message_id = sender.queue()
    worker = sender.worker(sender.transport(), owner="w")
    [job] = worker._claim()
    refused = _attempt(sender, job, AttemptResult("refused", 403, "forbidden", None), "w")
    requeue = RequeueUnit(sender.node.party, message_id, "operator")
    attempt, retried = in_one_batch(sender.node.committer, refused, requeue)
    assert attempt.result() == "refused"
    assert retried.exception() is None
    row = sender.outbox(message_id)
    assert (row["state"], row["attempts"], row["lease_owner"]) == ("pending", 0, None)
    assert row["status"] == "queued"


def _declared_huge(_partner: FakePartner, _token: bytes, _request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, content=b"x" * (MAX_ANSWER_BYTES + 1))


def _streamed_huge(_partner: FakePartner, _token: bytes, _request: httpx.Request) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_ANSWER_BYTES // 65536 + 2):
            yield b"x" * 65536

    return httpx.Response(201, content=chunks())  # chunked: no length declared


@pytest.mark.parametrize("answer", [_declared_huge, _streamed_huge])
def test_an_oversized_answer_is_not_read_whole_and_is_retried(
    sender: Sender, answer: Answer
) -> None:
    sender.partner.then(answer)
    message_id = sender.queue()
    sender.deliver()
    row = sender.outbox(message_id)
    assert row["state"] == "pending"
    assert sender.attempts(message_id)[0]["error"].startswith("answer-too-large")
    sender.clock.set(row["next_attempt_at"])
    sender.deliver()
    assert sender.attempt_outcomes(message_id) == ["retry", "delivered"]


def test_stored_messages_and_every_signed_copy_agree_with_the_log(sender: Sender) -> None:
    """`migex audit messages` on a sender: a first-signed delivery, a re-signed one, and
    one re-signed whose send never happened (its copy is stored, its attempt not yet)."""
    delivered = sender.queue()
    sender.deliver()
    resent = sender.queue()
    sender.clock.advance(sender.settings.resign_after + 1)
    sender.deliver()
    waiting = sender.queue()
    sender.clock.advance(sender.settings.resign_after + 1)

    async def resign_then_crash() -> None:
        worker = sender.worker(sender.transport())
        [job] = worker._claim()
        await worker._resign(job, job.copies[-1], sender.clock())

    asyncio.run(resign_then_crash())
    engine = sender.node.engines.reader
    with engine.connect() as conn:
        size = store.read_head(conn).size
    report = check_stored(engine, list(queries.export_lines(engine, 0, size)))
    assert report.findings == []
    assert (report.messages, report.copies, report.unsent) == (3, 5, 1)
    assert [sender.outbox(m)["state"] for m in (delivered, resent, waiting)] == [
        "delivered",
        "delivered",
        "pending",
    ]
