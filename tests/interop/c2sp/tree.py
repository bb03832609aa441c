"""RFC 6962 section 2.1 Merkle trees, written as the RFC's recursive definitions.

``mth``, ``path`` and ``proof`` follow the definitions of MTH, PATH and PROOF/SUBPROOF
word for word (slow, and meant to be: a second, different reading of the RFC); the
verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


class ProofFailure(ValueError):
    """An inclusion or consistency proof does not verify."""


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data)


def _inner(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return leaf_hash(leaves[0])
    k = _k(n)
    return _inner(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m <= n."""
    return _subproof(m, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def verify_inclusion(
    index: int, size: int, leaf: bytes, hashes: Sequence[bytes], root: bytes
) -> None:
    if index >= size:
        raise ProofFailure("index beyond the tree")
    if any(len(h) != 32 for h in (leaf, root, *hashes)):
        raise ProofFailure("a hash is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in hashes:
        if sn == 0:
            raise ProofFailure("inclusion proof too long")
        if fn % 2 == 1 or fn == sn:
            r = _inner(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _inner(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofFailure("inclusion proof does not reach the root")


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, hashes: Sequence[bytes]
) -> None:
    if first > second:
        raise ProofFailure("the first tree is larger than the second")
    if any(len(h) != 32 for h in hashes):
        raise ProofFailure("a hash is not 32 bytes")
    if first == second:
        if hashes or first_hash != second_hash:
            raise ProofFailure("equal sizes need equal roots and an empty proof")
        if first == 0 and first_hash != mth([]):
            raise ProofFailure("the empty tree's root is SHA-256 of nothing")
        return
    if first == 0 or not hashes:
        raise ProofFailure("no consistency proof from this size")
    chain = list(hashes)
    if first & (first - 1) == 0:
        chain.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = chain[0]
    for c in chain[1:]:
        if sn == 0:
            raise ProofFailure("consistency proof too long")
        if fn % 2 == 1 or fn == sn:
            fr, sr = _inner(c, fr), _inner(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _inner(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_hash or sr != second_hash:
        raise ProofFailure("consistency proof does not verify")
