"""Body of `audit.inclusion-proofs`: a receiver's proofs of the messages it logged.

Protocol v1.1 (docs/protocol.md, "Protocol v1.1: delivery proofs"). The receiver
sends each partner, for a checkpoint of its log whose cosignatures meet its witness
policy, the inclusion proofs of that partner's `message.accepted` entries the
checkpoint covers beyond the previous one it sent, and the consistency proof from
that previous checkpoint. The body checks the form and the arithmetic of sizes and
indices; signatures and the witness policy are checked by the receiving node
against its pinned keys (service/witness/delivery.py).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, StringConstraints, model_validator

from service.audit.checkpoint import CheckpointError, parse_checkpoint_text
from service.audit.note import NoteError, split_note
from service.protocol.envelope import UUID_RE
from service.records.failures import RuleFailures
from service.records.fieldtypes import PATTERN_HINTS, RecordModel

MAX_PROOFS: Final = 256
MAX_PATH: Final = 64
MAX_CHECKPOINT_CHARS: Final = 16 * 1024
MAX_LEAF_DATA_CHARS: Final = 87_384  # the base64 of 64 KiB
MAX_SIZE: Final = 2**63 - 1

HASH_PATTERN: Final = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
PATTERN_HINTS[HASH_PATTERN] = "must be the standard base64 of a 32-byte SHA-256 hash"
BASE64_PATTERN: Final = (
    r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
)
PATTERN_HINTS[BASE64_PATTERN] = "must be canonical standard base64 (RFC 4648 section 4)"
PATTERN_HINTS[UUID_RE] = "must be a lowercase hyphenated UUID"

Hash = Annotated[str, StringConstraints(pattern=HASH_PATTERN)]


class InclusionProof(RecordModel):
    """One logged message: its entry's index, leaf data and inclusion path."""

    index: Annotated[int, Field(ge=0, le=MAX_SIZE)] = Field(
        description="index of the message.accepted entry in the receiver's log"
    )
    message_id: Annotated[str, StringConstraints(pattern=UUID_RE)] = Field(
        description="id of the message the entry records"
    )
    leaf_data: Annotated[
        str, StringConstraints(min_length=4, max_length=MAX_LEAF_DATA_CHARS, pattern=BASE64_PATTERN)
    ] = Field(description="the entry's leaf data (RFC 8785 bytes), standard base64")
    path: Annotated[list[Hash], Field(max_length=MAX_PATH)] = Field(
        description="RFC 9162 inclusion path at the checkpoint's size, leaf's sibling first"
    )


class InclusionProofs(RecordModel):
    """Body of `audit.inclusion-proofs`: proofs of logged messages under a cosigned checkpoint."""

    checkpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHECKPOINT_CHARS)] = (
        Field(description="the receiver's checkpoint note with its witnesses' cosignatures")
    )
    previous_size: Annotated[int, Field(ge=0, le=MAX_SIZE)] = Field(
        description="size of the checkpoint whose proofs the receiver sent before, 0 if none"
    )
    consistency: Annotated[list[Hash], Field(max_length=MAX_PATH)] = Field(
        description="RFC 9162 consistency proof from previous_size to the checkpoint's size"
    )
    proofs: Annotated[list[InclusionProof], Field(min_length=1, max_length=MAX_PROOFS)]

    @model_validator(mode="after")
    def _sizes_fit(self) -> InclusionProofs:
        failures = RuleFailures()
        try:
            text, _ = split_note(self.checkpoint)
            size = parse_checkpoint_text(text).size
        except (NoteError, CheckpointError) as exc:
            failures.add(("checkpoint",), f"must be a signed checkpoint note: {exc}")
            failures.raise_if_any("InclusionProofs")
            return self
        if self.previous_size > size:
            failures.add(("previous_size",), "must not exceed the checkpoint's size")
        elif bool(self.consistency) != (0 < self.previous_size < size):
            failures.add(
                ("consistency",),
                "must be empty exactly when previous_size is 0 or the checkpoint's size",
            )
        seen: set[int] = set()
        for i, proof in enumerate(self.proofs):
            if not self.previous_size <= proof.index < size:
                failures.add(("proofs", i, "index"), "must lie in [previous_size, checkpoint size)")
            if proof.index in seen:
                failures.add(("proofs", i, "index"), "must not repeat another proof's index")
            seen.add(proof.index)
        failures.raise_if_any("InclusionProofs")
        return self
