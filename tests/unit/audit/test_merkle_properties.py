"""Property tests: proofs assembled from stored nodes verify, and altered ones do not."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.audit.merkle import (
    CompactRange,
    NodeId,
    ProofError,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    root_from_nodes,
    root_nodes,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 2000
LEAF_HASHES = [leaf_hash(hashlib.sha256(b"%d" % i).digest()) for i in range(MAX_SIZE)]


def all_nodes() -> dict[NodeId, bytes]:
    """Every perfect subtree of the 2000 leaves, as the log stores them."""
    compact, nodes = CompactRange(), {}
    for value in LEAF_HASHES:
        nodes.update({(level, k): h for level, k, h in compact.append_collect(value)})
    return nodes


NODES = all_nodes()
ROOTS: dict[int, bytes] = {}


def root(size: int) -> bytes:
    if size not in ROOTS:
        ROOTS[size] = root_from_nodes(size, {n: NODES[n] for n in root_nodes(size)})
    return ROOTS[size]


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(2, MAX_SIZE))
    return draw(st.integers(1, new - 1)), new


def mutate(proof: list[bytes], choice: int, bit: int) -> list[bytes]:
    """Flip one bit of one hash, drop the last hash, or add one."""
    if choice == 0 and proof:
        position = bit % len(proof)
        changed = bytearray(proof[position])
        changed[(bit // 8) % 32] ^= 1 << (bit % 8)
        return [*proof[:position], bytes(changed), *proof[position + 1 :]]
    if choice == 1 and proof:
        return proof[:-1]
    return [*proof, LEAF_HASHES[bit % MAX_SIZE]]


def test_compact_range_matches_folded_root_nodes_at_full_size() -> None:
    compact = CompactRange.from_frontier(MAX_SIZE, [NODES[n] for n in root_nodes(MAX_SIZE)])
    assert compact.root() == root(MAX_SIZE)


@settings(max_examples=300, deadline=None)
@given(index_and_size())
def test_inclusion_proof_from_nodes_verifies(case: tuple[int, int]) -> None:
    index, size = case
    proof = inclusion_proof(index, size, {n: NODES[n] for n in inclusion_nodes(index, size)})
    verify_inclusion(index, size, LEAF_HASHES[index], proof, root(size))


@settings(max_examples=300, deadline=None)
@given(index_and_size(), st.integers(0, 2), st.integers(0, 2**16))
def test_mutated_inclusion_proof_fails(case: tuple[int, int], choice: int, bit: int) -> None:
    index, size = case
    proof = inclusion_proof(index, size, NODES)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, LEAF_HASHES[index], mutate(proof, choice, bit), root(size))


@settings(max_examples=300, deadline=None)
@given(two_sizes())
def test_consistency_proof_from_nodes_verifies(case: tuple[int, int]) -> None:
    old, new = case
    proof = consistency_proof(old, new, {n: NODES[n] for n in consistency_nodes(old, new)})
    verify_consistency(old, new, root(old), root(new), proof)


@settings(max_examples=300, deadline=None)
@given(two_sizes(), st.integers(0, 2), st.integers(0, 2**16))
def test_mutated_consistency_proof_fails(case: tuple[int, int], choice: int, bit: int) -> None:
    old, new = case
    proof = consistency_proof(old, new, NODES)
    with pytest.raises(ProofError):
        verify_consistency(old, new, root(old), root(new), mutate(proof, choice, bit))
