"""A transparency log kept in memory, for witness tests: roots, proofs, signed checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit import merkle
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.witness.protocol import render_request


@dataclass
class MemoryLog:
    """A log of ``origin`` signed by ``key``; leaves are b"leaf <i>" unless given."""

    origin: str
    key: Ed25519PrivateKey
    leaves: list[bytes] = field(default_factory=list)

    def grow(self, size: int, tag: str = "") -> None:
        while len(self.leaves) < size:
            self.leaves.append(f"leaf {len(self.leaves)}{tag}".encode())

    def _nodes(self, size: int) -> dict[merkle.NodeId, bytes]:
        nodes: dict[merkle.NodeId, bytes] = {}
        level = [merkle.leaf_hash(leaf) for leaf in self.leaves[:size]]
        depth = 0
        while level:
            for k, value in enumerate(level):
                nodes[(depth, k)] = value
            level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            depth += 1
        return nodes

    def root(self, size: int) -> bytes:
        self.grow(size)
        return merkle.root_from_nodes(size, self._nodes(size))

    def proof(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        self.grow(new)
        return merkle.consistency_proof(old, new, self._nodes(new))

    def checkpoint(self, size: int, key: Ed25519PrivateKey | None = None) -> str:
        self.grow(size)
        cp = Checkpoint(self.origin, size, self.root(size))
        return sign_checkpoint(cp, self.origin, key or self.key)

    def request(self, old: int, size: int) -> bytes:
        """An add-checkpoint body: checkpoint of ``size`` with a proof from ``old``."""
        note = self.checkpoint(size)
        return render_request(old, self.proof(old, size), note)
