"""The submitter: each new checkpoint of the node goes to its witnesses, cosignatures are
verified and stored, 409 answers teach the witness's size, failures back off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from service.audit.checkpoint import parse_checkpoint_text
from service.audit.entries import AuditEvent
from service.audit.note import split_note
from service.clock import FixedClock
from service.config import load_config
from service.db.tables import witness_peers
from service.ledger.committer import AuditOnly
from service.runtime import Node, build_node
from service.witness import store
from service.witness.policy import evaluate
from service.witness.status import cosigned_checkpoint, newest_met
from service.witness.submitter import SubmitSettings, Submitter
from tests.support.nodes import Federation
from tests.unit.witness.witnesses import FakeWitness, policy_text, transport

NAMES = ("uz", "kg", "tj")


@pytest.fixture
def witnesses() -> dict[str, FakeWitness]:
    return {n: FakeWitness(f"{n}.example/witness") for n in NAMES}


@pytest.fixture
def node(
    federation: Federation, clock: FixedClock, witnesses: dict[str, FakeWitness]
) -> Iterator[Node]:
    policy = federation.tmp / "witnesses.policy"
    policy.write_text(policy_text(witnesses))

    def mutate(cfg: dict[str, Any]) -> None:
        cfg["witnessed_by"] = {
            "policy_file": str(policy),
            "timeout_seconds": 2,
            "backoff_initial_seconds": 4,
            "backoff_max_seconds": 60,
        }

    federation.mutate = mutate
    built = build_node(load_config(federation.write_config()), clock=clock)
    yield built
    built.close()


def append(node: Node, count: int = 1) -> store.StoredCheckpoint:
    """Append entries (the test configuration signs a checkpoint every batch)."""
    for _ in range(count):
        node.committer.run_sync(AuditOnly([AuditEvent("test.event", "ok")]))
    with node.engines.reader.connect() as conn:
        newest = store.latest_checkpoint(conn)
    assert newest is not None
    return newest


def submit_round(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock, owner: str = "test"
) -> None:
    assert node.submit is not None
    settings: SubmitSettings = node.submit

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport(witnesses)) as http:
            submitter = Submitter(settings, node.engines, clock, http, owner)
            await asyncio.to_thread(submitter._ensure_peers)
            newest = await asyncio.to_thread(submitter._newest)
            assert newest is not None
            await asyncio.gather(*submitter.start_round(newest))

    asyncio.run(run())


def cosigned(node: Node) -> str:
    with node.engines.reader.connect() as conn:
        note = cosigned_checkpoint(conn, node.witnessing, size=None, witnessed=False)
    assert note is not None
    return note


def test_every_witness_cosigns_the_newest_checkpoint(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    first = append(node, 3)
    submit_round(node, witnesses, clock)
    assert node.submit is not None
    report = evaluate(node.submit.policy, cosigned(node))
    assert report.met
    assert set(report.cosigned) == set(NAMES)
    assert all(w.size == first.size for w in witnesses.values())


def test_later_checkpoints_carry_a_consistency_proof_from_the_cosigned_size(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    first = append(node, 2)
    submit_round(node, witnesses, clock)
    second = append(node, 5)
    submit_round(node, witnesses, clock)
    assert witnesses["uz"].requests == [(0, first.size), (first.size, second.size)]
    assert node.submit is not None
    assert evaluate(node.submit.policy, cosigned(node)).met


def test_a_409_teaches_the_witness_size_and_the_request_is_sent_again(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    first = append(node, 2)
    submit_round(node, witnesses, clock)
    second = append(node, 3)
    # Another process's submission the node does not know of: the witness is further on.
    with node.engines.writer.begin() as conn:
        conn.execute(witness_peers.update().values(size=0, cosigned_pk=None))
    submit_round(node, witnesses, clock)
    assert witnesses["kg"].requests[-2:] == [(0, second.size), (first.size, second.size)]
    assert node.submit is not None
    assert evaluate(node.submit.policy, cosigned(node)).met


def test_a_witness_that_is_down_backs_off_and_the_policy_is_still_met(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    witnesses["tj"].down = True
    append(node, 2)
    submit_round(node, witnesses, clock)
    with node.engines.reader.connect() as conn:
        peers = store.read_peers(conn)
        assert newest_met(conn, node.witnessing) is not None  # type: ignore[arg-type]
    tj = next(p for w, p in peers.items() if w.startswith("tj."))
    assert tj.failures == 1
    assert tj.next_attempt_at == clock() + 4
    assert tj.last_error is not None
    assert "ConnectError" in tj.last_error
    # Not due yet: a new round does not call it.
    witnesses["tj"].down = False
    append(node)
    submit_round(node, witnesses, clock)
    assert witnesses["tj"].requests == []
    clock.advance(4)
    submit_round(node, witnesses, clock)
    assert witnesses["tj"].requests != []
    metrics = node_metrics(node)
    assert 'migex_witness_consecutive_failures{witness="tj"} 0.0' in metrics


def test_two_witnesses_down_leave_the_policy_unmet_and_the_wait_grows(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    append(node, 2)
    submit_round(node, witnesses, clock)
    witnesses["tj"].down = witnesses["kg"].down = True
    clock.advance(10)
    append(node)
    submit_round(node, witnesses, clock)
    clock.advance(30)
    metrics = node_metrics(node)
    assert "migex_witness_unwitnessed_seconds 30.0" in metrics
    assert "migex_witness_checkpoint_age_seconds 40.0" in metrics


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("sign_with", "no cosignature by the pinned witness key"),
        ("sign_other_text", "does not verify"),
    ],
)
def test_a_cosignature_that_does_not_verify_is_refused(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock, fault: str, error: str
) -> None:
    if fault == "sign_with":
        witnesses["uz"].sign_with = Ed25519PrivateKey.generate()
    else:
        witnesses["uz"].sign_other_text = True
    append(node, 2)
    submit_round(node, witnesses, clock)
    assert node.submit is not None
    report = evaluate(node.submit.policy, cosigned(node))
    assert "uz" not in report.cosigned
    with node.engines.reader.connect() as conn:
        uz = next(p for w, p in store.read_peers(conn).items() if w.startswith("uz."))
    assert uz.last_error is not None
    assert error in uz.last_error


def test_a_witness_ahead_of_the_log_is_reported_as_a_rewrite(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    newest = append(node, 2)
    witnesses["kg"].size = newest.size + 10
    submit_round(node, witnesses, clock)
    with node.engines.reader.connect() as conn:
        kg = next(p for w, p in store.read_peers(conn).items() if w.startswith("kg."))
    assert kg.last_error is not None
    assert "rolled back or rewritten" in kg.last_error


def test_a_witness_ahead_of_a_stale_round_gets_the_newest_checkpoint(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    stale = append(node, 2)
    newest = append(node, 3)
    # Another process already had the witness cosign the newest checkpoint.
    cp = parse_checkpoint_text(split_note(newest.note)[0])
    witnesses["kg"].size, witnesses["kg"].root = cp.size, cp.root
    assert node.submit is not None
    settings = node.submit
    kg = settings.policy.witnesses["kg"]

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport(witnesses)) as http:
            submitter = Submitter(settings, node.engines, clock, http, "test")
            await asyncio.to_thread(submitter._ensure_peers)
            await submitter.submit(kg, stale)

    asyncio.run(run())
    assert witnesses["kg"].requests == [(0, stale.size), (newest.size, newest.size)]
    with node.engines.reader.connect() as conn:
        peer = next(p for w, p in store.read_peers(conn).items() if w.startswith("kg."))
        lines = store.cosignatures(conn, [newest.pk])[newest.pk]
    assert peer.last_error is None
    assert peer.cosigned_pk == newest.pk
    assert len(lines) == 1


def test_after_a_success_the_process_keeps_the_witness_lease(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    append(node, 2)
    submit_round(node, witnesses, clock, owner="first")
    with node.engines.reader.connect() as conn:
        rows = conn.execute(select(witness_peers.c.lease_owner, witness_peers.c.lease_until)).all()
    assert {owner for owner, _ in rows} == {"first"}
    assert all(until > clock() for _, until in rows)
    # Another process finds every witness taken.
    append(node)
    before = {n: len(w.requests) for n, w in witnesses.items()}
    submit_round(node, witnesses, clock, owner="second")
    assert {n: len(w.requests) for n, w in witnesses.items()} == before


def test_a_leased_witness_is_not_submitted_to_by_another_process(
    node: Node, witnesses: dict[str, FakeWitness], clock: FixedClock
) -> None:
    append(node, 2)
    with node.engines.writer.begin() as conn:
        store.ensure_peers(conn, [])
    submit_round(node, witnesses, clock, owner="first")  # creates the rows
    append(node)
    with node.engines.writer.begin() as conn:
        conn.execute(witness_peers.update().values(lease_owner="other", lease_until=clock() + 60))
    before = {n: len(w.requests) for n, w in witnesses.items()}
    submit_round(node, witnesses, clock, owner="first")
    assert {n: len(w.requests) for n, w in witnesses.items()} == before
    with node.engines.reader.connect() as conn:
        owners = set(conn.execute(select(witness_peers.c.lease_owner)).scalars())
    assert owners == {"other"}


def node_metrics(node: Node) -> str:
    from service.observability.metrics import DatabaseCollector
    from service.witness.status import WitnessCollector

    return node.metrics.exposition(
        DatabaseCollector(node.engines, node.clock),
        WitnessCollector(node.engines, node.clock, node.witnessing),
    ).decode()
