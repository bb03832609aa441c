"""The body of `audit.inclusion-proofs`: form, sizes and indices."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.protocol.problems import Problem
from service.records.examples import EXAMPLES
from service.records.registry import validate_body

TYPE = "audit.inclusion-proofs"
HASH = "2tjpnuoVZLT9rb+9lH8hlUZtneeKMda7Qwl/qSdY5g0="


def body() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[TYPE])


def errors(value: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(Problem) as caught:
        validate_body(TYPE, value)
    return [(e["path"], e["message"]) for e in caught.value.extra["errors"]]


def test_the_example_is_valid() -> None:
    assert validate_body(TYPE, body()).warnings == []


def test_a_later_checkpoint_needs_its_consistency_proof() -> None:
    value = body()
    value["previous_size"] = 2
    value["proofs"][0]["index"] = 3
    found = errors(value)
    assert found == [
        (
            "/body/consistency",
            "must be empty exactly when previous_size is 0 or the checkpoint's size",
        )
    ]
    value["consistency"] = [HASH]
    assert validate_body(TYPE, value).warnings == []


def test_a_first_checkpoint_carries_no_consistency_proof() -> None:
    value = body()
    value["consistency"] = [HASH]
    assert [p for p, _ in errors(value)] == ["/body/consistency"]


def test_previous_size_beyond_the_checkpoint_is_refused() -> None:
    value = body()
    value["previous_size"] = 8
    assert next(p for p, _ in errors(value)) == "/body/previous_size"


@pytest.mark.parametrize("index", [7, 100])
def test_index_outside_the_new_range_is_refused(index: int) -> None:
    value = body()
    value["proofs"][0]["index"] = index
    assert errors(value) == [
        ("/body/proofs/0/index", "must lie in [previous_size, checkpoint size)")
    ]


def test_an_index_below_previous_size_is_refused() -> None:
    value = body()
    value["previous_size"] = 5
    value["consistency"] = [HASH]
    assert errors(value) == [
        ("/body/proofs/0/index", "must lie in [previous_size, checkpoint size)")
    ]


def test_duplicate_indices_are_refused() -> None:
    value = body()
    value["proofs"].append(copy.deepcopy(value["proofs"][0]))
    assert errors(value) == [("/body/proofs/1/index", "must not repeat another proof's index")]


def test_a_checkpoint_that_is_not_a_signed_note_is_refused() -> None:
    value = body()
    value["checkpoint"] = "migex/UZ:MIA\n7\nJmLtoRdbb10Xgr81CRs6hfSZi+DCDUCrGN4obivZYno=\n"
    assert [p for p, _ in errors(value)] == ["/body/checkpoint"]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("leaf_data", "eyJ=="),
        ("leaf_data", "eyJhIjoxfR=="),
        ("path", ["2tjpnuoVZLT9rb+9lH8hlUZtneeKMda7Qwl/qSdY5g1="]),
        ("path", ["AAAA"]),
        ("message_id", "01A20E59-2C0F-7CB0-8484-9B18FCBBAB03"),
    ],
)
def test_non_canonical_values_are_refused(member: str, value: object) -> None:
    proofs = body()
    proofs["proofs"][0][member] = value
    assert errors(proofs)[0][0].startswith(f"/body/proofs/0/{member}")


def test_no_proofs_is_refused() -> None:
    value = body()
    value["proofs"] = []
    assert [p for p, _ in errors(value)] == ["/body/proofs"]
