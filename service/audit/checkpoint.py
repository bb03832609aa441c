"""C2SP transparency log checkpoints (https://c2sp.org/tlog-checkpoint).

A checkpoint is a signed note (see :mod:`service.audit.note`) whose text is::

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [extension lines]

A migex node's log has origin ``migex/<party id>`` (for example ``migex/KZ:MIA``),
and the note key that signs its checkpoints has the same name, so a verifier key
for that log reads ``migex/KZ:MIA+<key id>+<key>``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.merkle import HASH_SIZE
from service.audit.note import open_note, parse_verifier_key, sign_note

ORIGIN_PREFIX = "migex/"
MAX_TREE_SIZE = 2**64 - 1


class CheckpointError(ValueError):
    """A checkpoint's text is malformed or is not for the expected log."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log's origin, its size and its RFC 9162 root."""

    origin: str
    size: int
    root: bytes


def log_origin(party_id: str) -> str:
    """The origin line (and checkpoint key name) of a party's log: ``migex/<party id>``."""
    return f"{ORIGIN_PREFIX}{party_id}"


def checkpoint_text(cp: Checkpoint) -> str:
    """The note text ``<origin>\\n<size>\\n<base64 root>\\n``."""
    _check_origin(cp.origin)
    if isinstance(cp.size, bool) or not 0 <= cp.size <= MAX_TREE_SIZE:
        raise CheckpointError(f"tree size {cp.size!r} is out of range")
    if len(cp.root) != HASH_SIZE:
        raise CheckpointError(f"the root hash must be {HASH_SIZE} bytes")
    root64 = binascii.b2a_base64(cp.root, newline=False).decode("ascii")
    return f"{cp.origin}\n{cp.size}\n{root64}\n"


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly; extension lines are accepted and ignored."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("a checkpoint has at least three non-empty lines")
    origin, size_line, root_line = lines[:3]
    _check_origin(origin)
    return Checkpoint(origin, _parse_size(size_line), _parse_root(root_line))


def sign_checkpoint(cp: Checkpoint, name: str, private: Ed25519PrivateKey) -> str:
    """The checkpoint as a note signed by the key ``name``."""
    return sign_note(checkpoint_text(cp), name, private)


def verify_checkpoint(note: str, vkey: str, *, origin: str | None = None) -> Checkpoint:
    """Verify a checkpoint note with ``vkey`` and return the checkpoint.

    The checkpoint's origin must equal ``origin`` when given, and otherwise the
    verifier key's name (the migex convention). Raises ``NoteError`` for a bad
    signature and :class:`CheckpointError` for bad text or another log's origin.
    """
    text = open_note(note, vkey)
    cp = parse_checkpoint_text(text)
    expected = origin if origin is not None else parse_verifier_key(vkey)[0]
    if cp.origin != expected:
        raise CheckpointError(f"checkpoint is for log {cp.origin!r}, not {expected!r}")
    return cp


def _check_origin(origin: str) -> None:
    if not origin or "\n" in origin:
        raise CheckpointError("the origin is one non-empty line")


def _parse_size(line: str) -> int:
    if not (line.isascii() and line.isdigit()) or (len(line) > 1 and line[0] == "0"):
        raise CheckpointError("the tree size is a decimal number without leading zeros")
    size = int(line)
    if size > MAX_TREE_SIZE:
        raise CheckpointError("the tree size does not fit in 64 bits")
    return size


def _parse_root(line: str) -> bytes:
    try:
        root = binascii.a2b_base64(line, strict_mode=True) if line.isascii() else b""
    except binascii.Error:
        root = b""
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"the root hash is the base64 of {HASH_SIZE} bytes")
    if binascii.b2a_base64(root, newline=False).decode("ascii") != line:
        raise CheckpointError("the root hash is not in canonical base64")
    return root
