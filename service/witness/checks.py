"""The witness's decisions on an add-checkpoint request (C2SP tlog-witness).

Pure: values in, a checkpoint or a :class:`Refusal` out. The order is the spec's:
an unknown origin is 404, no trusted signature 403, an old size above the
checkpoint's 400, a size-zero checkpoint without the empty root 422, an old size
other than the latest cosigned one 409, and a checkpoint that is not consistent with
the latest cosigned one (another root at the same size, a proof that does not
verify, a proof from size zero) 422. docs/protocol.md, "Witnessing", says which
version of the spec this follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.audit.checkpoint import (
    ORIGIN_PREFIX,
    Checkpoint,
    CheckpointError,
    parse_checkpoint_text,
)
from service.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from service.audit.note import NoteError, open_note, split_note
from service.witness.protocol import AddCheckpoint


@dataclass(frozen=True)
class Refusal(Exception):
    """Why a request is not cosigned: its HTTP status, problem code and detail.

    ``evidence`` marks a validly signed checkpoint that contradicts the one cosigned
    before, which the witness keeps as evidence of the log's misbehaviour.
    """

    status: int
    code: str
    detail: str
    latest_size: int | None = None
    evidence: bool = False

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint the witness cosigned for a log (size 0 and the empty root if none)."""

    size: int
    root: bytes
    note: str


NEVER_COSIGNED = Latest(0, EMPTY_ROOT, "")


def origin_of(note: str) -> str:
    """The origin line of a checkpoint note, unverified (400 if the note is malformed)."""
    try:
        text, _ = split_note(note)
    except NoteError as exc:
        raise Refusal(400, "bad-request", f"the checkpoint is not a signed note: {exc}") from None
    return text.split("\n", 1)[0]


def party_of(origin: str) -> str | None:
    """The party of a `migex/<party>` origin, for an audit entry's party column; None for
    another log's origin (a party is at most 40 characters)."""
    if not origin.startswith(ORIGIN_PREFIX) or len(origin) - len(ORIGIN_PREFIX) > 40:
        return None
    return origin.removeprefix(ORIGIN_PREFIX)


def verify_signed(
    note: str, origin: str, trusted: Mapping[str, Sequence[str]]
) -> tuple[Checkpoint, str]:
    """The checkpoint and its note body if a trusted key of ``origin`` signed it.

    404 for an origin this witness does not witness, 403 when no signature by a
    trusted key verifies (signatures by other keys are ignored).
    """
    vkeys = trusted.get(origin)
    if not vkeys:
        raise Refusal(404, "unknown-log", f"this node does not witness the log {origin!r}")
    for vkey in vkeys:
        try:
            text = open_note(note, vkey)
        except NoteError:
            continue
        try:
            return parse_checkpoint_text(text), text
        except CheckpointError as exc:
            raise Refusal(400, "bad-request", f"the checkpoint is malformed: {exc}") from None
    raise Refusal(
        403, "untrusted-checkpoint", f"no trusted key of {origin!r} signed the checkpoint"
    )


def check_request(request: AddCheckpoint, cp: Checkpoint) -> None:
    """The checks that need no state: old size within bounds, an empty tree's root."""
    if request.old_size > cp.size:
        raise Refusal(
            400, "bad-request", f"old size {request.old_size} exceeds the checkpoint's {cp.size}"
        )
    if cp.size == 0 and cp.root != EMPTY_ROOT:
        raise Refusal(422, "inconsistent", "a checkpoint of size 0 must have the empty tree's root")


def check_consistency(request: AddCheckpoint, cp: Checkpoint, latest: Latest) -> None:
    """Against the latest cosigned checkpoint: 409 for another old size, 422 if inconsistent."""
    if request.old_size != latest.size:
        raise Refusal(
            409,
            "old-size",
            f"the latest cosigned size is {latest.size}, not {request.old_size}",
            latest_size=latest.size,
        )
    if request.old_size == 0:
        if request.proof:
            raise Refusal(422, "inconsistent", "a proof from size 0 must be empty")
        return
    try:
        verify_consistency(latest.size, cp.size, latest.root, cp.root, request.proof)
    except ProofError as exc:
        raise Refusal(
            422,
            "inconsistent",
            f"the checkpoint is not consistent with the cosigned one of size {latest.size}: {exc}",
            evidence=True,
        ) from None
