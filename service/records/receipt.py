"""Body of `receipt`: the receiver's signed acknowledgement (docs/protocol.md section 4)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from service.records.fieldtypes import PATTERN_HINTS, RecordModel

# 32 bytes in unpadded base64url are 43 characters; the last carries 4 zero bits.
DIGEST_PATTERN: Final = r"^sha-256:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
PATTERN_HINTS[DIGEST_PATTERN] = (
    "must be sha-256: followed by the unpadded base64url SHA-256 digest (43 characters)"
)
MAX_AUDIT_INDEX: Final = 2**63 - 1


class StoredAttachment(RecordModel):
    """An attachment the receiver holds: exactly the bytes of `digest`."""

    digest: Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
    size: Annotated[int, Field(ge=1, le=2**53 - 1)]
    status: Literal["stored"]


class Receipt(RecordModel):
    """Body of `receipt`: the message was accepted and recorded at `audit_index`."""

    status: Literal["accepted"]
    digest: Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)] = Field(
        description="SHA-256 over the exact JWS compact bytes received"
    )
    audit_index: Annotated[int, Field(ge=0, le=MAX_AUDIT_INDEX)] = Field(
        description="index of the audit log entry that records the acceptance"
    )
    attachments: list[StoredAttachment] | None = Field(
        default=None,
        description="protocol v1.1: each attachment of the message, in body order, as stored",
    )
