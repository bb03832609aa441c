"""Merkle tree hashing and proofs of RFC 9162 section 2.1.

The log keeps the hashes of *perfect subtrees*: node ``(level, k)`` is the hash of
leaves ``[k * 2**level, (k + 1) * 2**level)``, and level 0 holds the leaf hashes.
Every subtree the RFC 9162 algorithms talk about (``MTH(D[a:b])``) is a run of
leaves starting at a multiple of a power of two ``>= b - a``; its hash is the
right-to-left fold of the perfect subtrees that cover it (:func:`range_nodes`).

Proof generation is therefore split in two steps, so that storage can fetch what
is needed in one read: ``*_nodes`` functions say WHICH perfect-subtree nodes a
proof needs (O(log n) of them), and the matching functions assemble the proof
from a mapping of those nodes. Verification follows RFC 9162 sections 2.1.3.2
and 2.1.4.2 literally and raises :class:`ProofError`.

This module is pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

Hash = bytes
"""A SHA-256 digest, 32 bytes."""

NodeId = tuple[int, int]
"""A perfect subtree ``(level, k)``: the hash of leaves [k * 2**level, (k + 1) * 2**level)."""

HASH_SIZE = 32
EMPTY_ROOT: Hash = hashlib.sha256(b"").digest()
"""MTH({}), the root of the empty tree."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify."""


def leaf_hash(data: bytes) -> Hash:
    """SHA-256(0x00 || data): the hash of one leaf's data."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- which nodes -----------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees that exactly cover leaves [start, end), left to right.

    Greedy: each node is the largest aligned perfect subtree that starts at the
    current position and does not pass ``end``.
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def root_nodes(size: int) -> list[NodeId]:
    """The perfect subtrees whose fold is the root of a tree of ``size`` leaves."""
    return range_nodes(0, size)


def inclusion_nodes(index: int, size: int) -> list[NodeId]:
    """Every perfect-subtree node that :func:`inclusion_proof` reads."""
    return _flatten(_inclusion_ranges(index, size))


def consistency_nodes(old: int, new: int) -> list[NodeId]:
    """Every perfect-subtree node that :func:`consistency_proof` reads."""
    return _flatten(_consistency_ranges(old, new))


def _flatten(ranges: Sequence[tuple[int, int]]) -> list[NodeId]:
    return [node for start, end in ranges for node in range_nodes(start, end)]


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size >= 2): RFC 9162's k."""
    return 1 << ((size - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges of PATH(index, D[size]), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    lo, hi = 0, size
    ranges: list[tuple[int, int]] = []
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges of PROOF(old, D[new]) (RFC 9162 section 2.1.4.1), in order."""
    if old == new and old >= 0:
        return []
    if not 0 < old < new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    lo, hi, m, complete = 0, new, old, True
    ranges: list[tuple[int, int]] = []
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            m -= mid - lo
            lo = mid
            complete = False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


# --- assembling from fetched nodes -------------------------------------------------


def fold_range(hashes: Sequence[Hash]) -> Hash:
    """MTH of a subtree from the hashes of its covering perfect subtrees.

    ``hashes`` are the nodes of ``range_nodes(a, b)`` left to right; they are
    folded right to left (the last two combine first). The result is
    ``MTH(D[a:b])`` whenever ``a`` is a multiple of a power of two ``>= b - a``,
    which holds for every subtree of an RFC 9162 tree (and for ``a == 0``).
    The fold of nothing is :data:`EMPTY_ROOT`.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def _range_hash(start: int, end: int, nodes: Mapping[NodeId, Hash]) -> Hash:
    return fold_range([_fetch(nodes, node) for node in range_nodes(start, end)])


def _fetch(nodes: Mapping[NodeId, Hash], node: NodeId) -> Hash:
    try:
        return nodes[node]
    except KeyError:
        raise KeyError(f"perfect subtree node {node} was not provided") from None


def root_from_nodes(size: int, nodes: Mapping[NodeId, Hash]) -> Hash:
    """MTH(D[size]) from the nodes listed by ``root_nodes(size)``."""
    return _range_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeId, Hash]) -> list[Hash]:
    """PATH(index, D[size]), leaf to root, from the nodes of :func:`inclusion_nodes`."""
    return [_range_hash(a, b, nodes) for a, b in _inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, nodes: Mapping[NodeId, Hash]) -> list[Hash]:
    """PROOF(old, D[new]) of RFC 9162 section 2.1.4.1.

    Empty when ``old == new``; otherwise requires ``0 < old < new`` (a proof from
    the empty tree is meaningless) and raises ValueError for anything else.
    """
    return [_range_hash(a, b, nodes) for a, b in _consistency_ranges(old, new)]


# --- verification --------------------------------------------------------------


def _check_hashes(what: str, hashes: Sequence[Hash]) -> None:
    for position, value in enumerate(hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofError(f"{what}[{position}] is not a {HASH_SIZE}-byte hash")


def _lsb(value: int) -> bool:
    return value & 1 == 1


def verify_inclusion(index: int, size: int, leaf: Hash, proof: Sequence[Hash], root: Hash) -> None:
    """Check that ``leaf`` (a leaf HASH, see :func:`leaf_hash`) is at ``index``
    in the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 section 2.1.3.2. Raises :class:`ProofError`.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hashes("leaf", [leaf])
    _check_hashes("proof", proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old: int, new: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]
) -> None:
    """Check that the tree of ``old`` leaves with ``old_root`` is a prefix of the
    tree of ``new`` leaves with ``new_root``.

    RFC 9162 section 2.1.4.2 for ``0 < old < new``. Equal sizes need an empty
    proof and equal roots (for size 0, the empty-tree root). A proof from the
    empty tree is meaningless and refused. Raises :class:`ProofError`.
    """
    if not 0 <= old <= new:
        raise ProofError(f"no consistency between size {old} and size {new}")
    if old == new:
        _verify_same_size(old, old_root, new_root, proof)
        return
    if old == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hashes("proof", proof)
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


def _verify_same_size(size: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]) -> None:
    if proof:
        raise ProofError("trees of equal size need an empty consistency proof")
    if old_root != new_root:
        raise ProofError("trees of equal size have different roots")
    if size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree is SHA-256 of nothing")


# --- streaming ---------------------------------------------------------------------


StoredNode = tuple[int, int, Hash]
"""A perfect subtree with its hash: (level, k, hash)."""


class CompactRange:
    """The perfect subtrees covering leaves [start, size), kept left to right.

    Appending a leaf costs amortised O(1) hashes and the state is O(log n)
    hashes, so a tree of any size can be rebuilt or extended while streaming.
    With ``start == 0`` (the usual case), :meth:`root` is MTH(D[size]) and the
    kept nodes are exactly ``root_nodes(size)``.
    """

    __slots__ = ("_nodes", "_size", "_start")

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise ValueError("a compact range cannot start before leaf 0")
        self._start = start
        self._size = start
        self._nodes: list[StoredNode] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[Hash]) -> CompactRange:
        """Continue a tree of ``size`` leaves from the hashes of ``root_nodes(size)``."""
        ids = root_nodes(size)
        if len(frontier) != len(ids):
            raise ValueError(f"a tree of size {size} has {len(ids)} frontier nodes")
        for value in frontier:
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")
        compact = cls()
        compact._size = size
        compact._nodes = [(level, k, h) for (level, k), h in zip(ids, frontier, strict=True)]
        return compact

    @property
    def start(self) -> int:
        """The first leaf covered."""
        return self._start

    @property
    def size(self) -> int:
        """One past the last leaf covered: the tree size when ``start == 0``."""
        return self._size

    @property
    def nodes(self) -> list[StoredNode]:
        """The covering perfect subtrees, left to right."""
        return list(self._nodes)

    def frontier(self) -> list[Hash]:
        """The hashes of the covering perfect subtrees, left to right."""
        return [h for _, _, h in self._nodes]

    def append(self, leaf_hash: Hash) -> None:
        """Add the next leaf (its hash)."""
        self._push(leaf_hash, None)

    def append_collect(self, leaf_hash: Hash) -> list[StoredNode]:
        """Add the next leaf and return every perfect subtree it completes,
        the leaf itself (level 0) first, then upwards."""
        created: list[StoredNode] = []
        self._push(leaf_hash, created)
        return created

    def _push(self, value: Hash, created: list[StoredNode] | None) -> None:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        nodes = self._nodes
        node: StoredNode = (0, self._size, value)
        self._size += 1
        while True:
            if created is not None:
                created.append(node)
            level, k, h = node
            if not nodes or k & 1 == 0 or nodes[-1][0] != level:
                break
            node = (level + 1, k >> 1, node_hash(nodes.pop()[2], h))
        nodes.append(node)

    def root(self) -> Hash:
        """The fold of the covering subtrees: MTH(D[size]) when ``start == 0``."""
        return fold_range([h for _, _, h in self._nodes])
