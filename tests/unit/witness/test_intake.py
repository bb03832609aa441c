"""Checking a partner's `audit.inclusion-proofs` before storing: which proofs count."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.protocol.b64 import b64_encode
from service.records.inclusion_proofs import InclusionProofs
from service.witness.intake import CheckedBatch, Delivered, KnownCheckpoint, check_batch
from service.witness.partnerproofs import PartnerProofs
from service.witness.policy import parse_policy
from service.witness.tlogproof import parse_proof, verify_proof
from tests.interop.c2sp import tree as c2sp_tree
from tests.unit.witness.test_tlogproof import LEAVES, LOG_VKEY, POLICY_TEXT, checkpoint_note

PARTNER = PartnerProofs("UZ:MIA", "kz-uz-2019", parse_policy(POLICY_TEXT), (LOG_VKEY,))


def message_id(index: int) -> str:
    return f"01a20e59-2c0f-7cb0-8484-9b18fcbbab{index:02d}"


def digest(index: int) -> str:
    value: str = json.loads(LEAVES[index])["digest"]
    return value


def body(
    indices: tuple[int, ...] = (3, 5),
    previous: int = 0,
    witnesses: tuple[int, ...] = (1, 2),
    consistency: list[bytes] | None = None,
) -> InclusionProofs:
    if consistency is None:
        consistency = c2sp_tree.proof(previous, LEAVES) if 0 < previous < len(LEAVES) else []
    return InclusionProofs.model_validate(
        {
            "checkpoint": checkpoint_note(witnesses),
            "previous_size": previous,
            "consistency": [b64_encode(h) for h in consistency],
            "proofs": [
                {
                    "index": i,
                    "message_id": message_id(i),
                    "leaf_data": b64_encode(LEAVES[i]),
                    "path": [b64_encode(h) for h in c2sp_tree.path(i, LEAVES)],
                }
                for i in indices
            ],
        }
    )


def delivered(**changes: Any) -> dict[str, Delivered]:
    rows = {message_id(i): Delivered(100 + i, digest(i), i) for i in (3, 5)}
    rows.update(changes)
    return rows


def check(
    proofs: InclusionProofs,
    *,
    known: KnownCheckpoint | None = None,
    mine: dict[str, Delivered] | None = None,
    node: str = "KZ:MIA",
) -> CheckedBatch:
    return check_batch(
        proofs,
        node=node,
        receiver="UZ:MIA",
        partner=PARTNER,
        known=known,
        delivered=delivered() if mine is None else mine,
        message_id="01a20e59-2c0f-7cb0-8484-000000000001",
        message_pk=7,
    )


def test_valid_proofs_are_kept_as_tlog_proofs_that_verify_alone() -> None:
    batch = check(body())
    assert batch.invalid == []
    assert batch.fork is None
    assert [(pk, index, size) for pk, index, size, _ in batch.stored] == [(103, 3, 7), (105, 5, 7)]
    for _, index, _, text in batch.stored:
        proven = verify_proof(text, PARTNER.policy)
        assert proven.index == index
        assert parse_proof(text).extra == LEAVES[index]


def test_a_proof_for_another_copy_or_receipt_index_is_refused() -> None:
    mine = delivered(
        **{
            message_id(3): Delivered(103, "sha-256:" + "B" * 43, 3),
            message_id(5): Delivered(105, digest(5), 4),
        }
    )
    batch = check(body(), mine=mine)
    assert batch.stored == []
    assert [m for m, _ in batch.invalid] == [message_id(3), message_id(5)]


def test_a_proof_of_a_message_not_delivered_is_refused() -> None:
    batch = check(body(), mine={})
    assert len(batch.invalid) == 2
    assert all("no delivered message" in reason for _, reason in batch.invalid)


def test_entries_of_another_sender_are_refused() -> None:
    batch = check(body(), node="KG:SRS")
    assert all("another sender" in reason for _, reason in batch.invalid)


def test_an_entry_that_is_not_an_acceptance_is_refused() -> None:
    batch = check(body(indices=(2,)), mine={message_id(2): Delivered(102, digest(2), 2)})
    assert batch.stored == []
    assert "not an accepted message" in batch.invalid[0][1]


def test_a_checkpoint_below_the_policy_stores_nothing() -> None:
    batch = check(body(witnesses=(3,)))
    assert batch.stored == []
    assert batch.invalid[0][0] is None
    assert "do not meet the policy" in batch.invalid[0][1]


def test_a_consistent_extension_of_the_known_checkpoint_is_accepted() -> None:
    known = KnownCheckpoint(3, c2sp_tree.mth(LEAVES[:3]), "known")
    batch = check(body(previous=3), known=known)
    assert batch.fork is None
    assert batch.extends_known
    assert len(batch.stored) == 2


def test_a_checkpoint_that_does_not_extend_the_known_one_is_a_fork() -> None:
    other = [*LEAVES[:2], b"rewritten", *LEAVES[3:]]
    known = KnownCheckpoint(3, c2sp_tree.mth(other[:3]), "known")
    batch = check(body(previous=3), known=known)
    assert batch.fork is not None
    assert "not an extension of tree size 3" in batch.fork
    assert batch.stored == []


def test_two_roots_for_one_size_is_a_fork() -> None:
    known = KnownCheckpoint(7, bytes(32), "known")
    batch = check(body(), known=known)
    assert batch.fork == "two roots for tree size 7"


@pytest.mark.parametrize("previous", [0, 2])
def test_a_proof_from_another_size_than_the_known_one_is_not_compared(previous: int) -> None:
    known = KnownCheckpoint(4, bytes(32), "known")
    batch = check(body(previous=previous), known=known)
    assert batch.fork is None
    assert len(batch.stored) == 2  # the proofs stand on the witnessed checkpoint alone
    assert not batch.extends_known  # but it does not replace the known checkpoint
