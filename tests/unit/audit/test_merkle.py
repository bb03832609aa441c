"""RFC 9162 Merkle tree maths against a literal recursive reference of section 2.1."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from service.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    ProofError,
    consistency_nodes,
    consistency_proof,
    fold_range,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_nodes,
    root_from_nodes,
    root_nodes,
    verify_consistency,
    verify_inclusion,
)

# --- the reference: RFC 9162 section 2.1, written literally -------------------------


def ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- a tree of 64 leaves and all its perfect subtrees --------------------------------

RFC_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = RFC_LEAVES + [b"migex audit leaf %d" % i for i in range(8, 64)]
SIZES = range(1, len(LEAVES) + 1)


def perfect_nodes(leaves: Sequence[bytes]) -> dict[NodeId, bytes]:
    """Every perfect subtree (level, k) that lies within the leaves, bottom-up."""
    nodes = {(0, i): leaf_hash(leaf) for i, leaf in enumerate(leaves)}
    level, width = 0, len(leaves)
    while width > 1:
        for k in range(width // 2):
            nodes[(level + 1, k)] = node_hash(nodes[(level, 2 * k)], nodes[(level, 2 * k + 1)])
        level, width = level + 1, width // 2
    return nodes


NODES = perfect_nodes(LEAVES)
ROOTS = {n: ref_mth(LEAVES[:n]) for n in SIZES}


def only(ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    return {node: NODES[node] for node in ids}


def flip(value: bytes, bit: int = 0) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# --- hashing -----------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_hash_prefixes_zero_byte() -> None:
    assert leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_node_hash_prefixes_one_byte() -> None:
    left, right = b"\x11" * 32, b"\x22" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_reference_roots_match_published_prefixes() -> None:
    prefixes = ["6e340b9c", "fac54203", "aeb6bcfe", "d37ee418"]
    prefixes += ["4e3bbb1f", "76e67dad", "ddb89be4", "5dc9da79"]
    assert [ROOTS[n].hex()[:8] for n in range(1, 9)] == prefixes


# --- which nodes ---------------------------------------------------------------------


def test_range_nodes_covers_unaligned_range_greedily() -> None:
    assert range_nodes(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]


def test_range_nodes_of_empty_range_is_empty() -> None:
    assert range_nodes(5, 5) == []


def test_range_nodes_refuses_reversed_range() -> None:
    with pytest.raises(ValueError, match="range"):
        range_nodes(4, 3)


def test_root_nodes_follow_the_binary_digits_of_the_size() -> None:
    assert root_nodes(13) == [(3, 0), (2, 2), (0, 12)]


def test_node_map_matches_reference_subtree_hashes() -> None:
    for (level, k), value in NODES.items():
        assert value == ref_mth(LEAVES[k << level : (k + 1) << level])


def test_fold_range_of_nothing_is_empty_root() -> None:
    assert fold_range([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", SIZES)
def test_root_from_nodes_equals_reference_mth(size: int) -> None:
    assert root_from_nodes(size, only(root_nodes(size))) == ROOTS[size]


def test_root_from_nodes_of_empty_tree_is_empty_root() -> None:
    assert root_from_nodes(0, {}) == EMPTY_ROOT


def test_root_from_nodes_names_a_missing_node() -> None:
    with pytest.raises(KeyError, match=r"\(2, 0\)"):
        root_from_nodes(5, {(0, 4): NODES[(0, 4)]})


# --- inclusion -------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_proofs_from_listed_nodes_equal_reference_path(size: int) -> None:
    for index in range(size):
        proof = inclusion_proof(index, size, only(inclusion_nodes(index, size)))
        assert proof == ref_path(index, LEAVES[:size])


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_nodes_are_logarithmic(size: int) -> None:
    bound = 2 * size.bit_length()
    assert all(len(inclusion_nodes(index, size)) <= bound for index in range(size))


@pytest.mark.parametrize("size", SIZES)
def test_reference_paths_verify(size: int) -> None:
    for index in range(size):
        path = ref_path(index, LEAVES[:size])
        verify_inclusion(index, size, leaf_hash(LEAVES[index]), path, ROOTS[size])


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_fails_for_wrong_index(size: int) -> None:
    for index in range(size):
        path, leaf = ref_path(index, LEAVES[:size]), leaf_hash(LEAVES[index])
        for wrong in {index ^ 1, index + 1, index - 1} - {index}:
            with pytest.raises(ProofError):
                verify_inclusion(wrong, size, leaf, path, ROOTS[size])


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_fails_for_doubled_or_halved_size(size: int) -> None:
    for index in range(size):
        path, leaf = ref_path(index, LEAVES[:size]), leaf_hash(LEAVES[index])
        for wrong in {size * 2, size // 2} - {size}:
            with pytest.raises(ProofError):
                verify_inclusion(index, wrong, leaf, path, ROOTS[size])


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_fails_for_truncated_or_extended_path(size: int) -> None:
    for index in range(size):
        path, leaf = ref_path(index, LEAVES[:size]), leaf_hash(LEAVES[index])
        for wrong in (path[:-1], [*path, ROOTS[size]], [EMPTY_ROOT, *path]):
            if wrong != path:
                with pytest.raises(ProofError):
                    verify_inclusion(index, size, leaf, wrong, ROOTS[size])


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_fails_for_flipped_bit(size: int) -> None:
    for index in range(size):
        path, leaf = ref_path(index, LEAVES[:size]), leaf_hash(LEAVES[index])
        for position in range(len(path)):
            changed = [*path[:position], flip(path[position], 77), *path[position + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf, changed, ROOTS[size])
        with pytest.raises(ProofError):
            verify_inclusion(index, size, flip(leaf), path, ROOTS[size])
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, path, flip(ROOTS[size], 255))


def test_inclusion_refuses_short_hash_in_path() -> None:
    path = ref_path(0, LEAVES[:4])
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion(0, 4, leaf_hash(LEAVES[0]), [path[0][:31], path[1]], ROOTS[4])


def test_inclusion_proof_refuses_index_outside_tree() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_nodes(4, 4)


# --- consistency ---------------------------------------------------------------------


@pytest.mark.parametrize("new", SIZES)
def test_consistency_proofs_from_listed_nodes_equal_reference(new: int) -> None:
    for old in range(1, new + 1):
        proof = consistency_proof(old, new, only(consistency_nodes(old, new)))
        assert proof == ref_proof(old, LEAVES[:new])


@pytest.mark.parametrize("new", SIZES)
def test_reference_consistency_proofs_verify(new: int) -> None:
    for old in range(1, new + 1):
        proof = ref_proof(old, LEAVES[:new])
        verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize("new", SIZES)
def test_consistency_nodes_are_logarithmic(new: int) -> None:
    bound = 2 * new.bit_length() + 1
    assert all(len(consistency_nodes(old, new)) <= bound for old in range(1, new + 1))


def wrong_sizes(old: int, new: int) -> set[tuple[int, int]]:
    """Other size pairs a proof must not pass for. Like an inclusion path, a proof
    may also fit a new size one larger: the checkpoint is what binds the size."""
    olds = {old + 1, old - 1, old * 2, old // 2}
    pairs = {(o, new) for o in olds} | {(old, new * 2), (old, new // 2)}
    return {(o, n) for o, n in pairs if 0 < o < n and (o, n) != (old, new)}


@pytest.mark.parametrize("new", range(2, len(LEAVES) + 1))
def test_consistency_fails_for_wrong_sizes(new: int) -> None:
    for old in range(1, new):
        proof = ref_proof(old, LEAVES[:new])
        for wrong_old, wrong_new in wrong_sizes(old, new):
            with pytest.raises(ProofError):
                verify_consistency(wrong_old, wrong_new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize("new", range(2, len(LEAVES) + 1))
def test_consistency_fails_for_altered_proof(new: int) -> None:
    for old in range(1, new):
        proof, roots = ref_proof(old, LEAVES[:new]), (ROOTS[old], ROOTS[new])
        altered = [proof[:-1], [*proof, EMPTY_ROOT], [EMPTY_ROOT, *proof]]
        altered += [[*proof[:i], flip(proof[i], 9), *proof[i + 1 :]] for i in range(len(proof))]
        for wrong in altered:
            with pytest.raises(ProofError):
                verify_consistency(old, new, *roots, wrong)


@pytest.mark.parametrize("new", range(2, len(LEAVES) + 1))
def test_consistency_fails_for_altered_roots(new: int) -> None:
    for old in range(1, new):
        proof = ref_proof(old, LEAVES[:new])
        for roots in ((flip(ROOTS[old]), ROOTS[new]), (ROOTS[old], flip(ROOTS[new]))):
            with pytest.raises(ProofError):
                verify_consistency(old, new, *roots, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, ROOTS[new], ROOTS[old], proof)


def test_consistency_of_equal_sizes_is_empty() -> None:
    assert consistency_proof(9, 9, {}) == []


def test_consistency_of_equal_sizes_needs_equal_roots() -> None:
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(9, 9, ROOTS[9], ROOTS[8], [])


def test_consistency_from_empty_tree_is_refused() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 3, EMPTY_ROOT, ROOTS[3], [ROOTS[3]])


def test_consistency_proof_refuses_shrinking_tree() -> None:
    with pytest.raises(ValueError, match="from size 5 to size 4"):
        consistency_nodes(5, 4)


def test_consistency_proof_refuses_empty_old_tree() -> None:
    with pytest.raises(ValueError, match="from size 0"):
        consistency_proof(0, 4, NODES)


# --- compact ranges --------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_compact_range_root_equals_reference(size: int) -> None:
    compact = CompactRange()
    for leaf in LEAVES[:size]:
        compact.append(leaf_hash(leaf))
    assert (compact.size, compact.root()) == (size, ROOTS[size])


@pytest.mark.parametrize("size", SIZES)
def test_compact_range_keeps_the_root_nodes(size: int) -> None:
    compact = CompactRange()
    for leaf in LEAVES[:size]:
        compact.append(leaf_hash(leaf))
    assert compact.nodes == [(lv, k, NODES[(lv, k)]) for lv, k in root_nodes(size)]


def test_append_collect_yields_every_perfect_subtree_once() -> None:
    compact, collected = CompactRange(), {}
    for leaf in LEAVES:
        for level, k, value in compact.append_collect(leaf_hash(leaf)):
            assert (level, k) not in collected
            collected[(level, k)] = value
    assert collected == NODES


def test_append_collect_returns_leaf_then_completed_parents() -> None:
    compact = CompactRange.from_frontier(7, [NODES[n] for n in root_nodes(7)])
    created = compact.append_collect(leaf_hash(LEAVES[7]))
    expected = [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert created == [(level, k, NODES[(level, k)]) for level, k in expected]
    assert compact.nodes == [(3, 0, NODES[(3, 0)])]


@pytest.mark.parametrize("size", range(0, len(LEAVES)))
def test_from_frontier_continues_to_reference_roots(size: int) -> None:
    compact = CompactRange.from_frontier(size, [NODES[n] for n in root_nodes(size)])
    assert compact.root() == (ROOTS[size] if size else EMPTY_ROOT)
    for n in range(size + 1, len(LEAVES) + 1):
        compact.append(leaf_hash(LEAVES[n - 1]))
        assert compact.root() == ROOTS[n]


def test_from_frontier_refuses_wrong_number_of_hashes() -> None:
    with pytest.raises(ValueError, match="3 frontier nodes"):
        CompactRange.from_frontier(7, [NODES[(2, 0)], NODES[(1, 2)]])


def test_compact_range_refuses_short_leaf_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b"\x00" * 31)


def test_compact_range_with_start_covers_range_nodes() -> None:
    compact = CompactRange(start=3)
    for i in range(3, 13):
        compact.append(leaf_hash(LEAVES[i]))
    assert [(lv, k) for lv, k, _ in compact.nodes] == range_nodes(3, 13)
    assert compact.root() == fold_range([NODES[n] for n in range_nodes(3, 13)])
