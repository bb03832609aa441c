"""An attachment named in a signed body: a file whose bytes travel beside the message
(docs/protocol.md, 'Attachments (v1.1)'). The body carries what the signature must
cover: the SHA-256 digest and size of the bytes, their media type and a file name."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints

from service.records.failures import rule_error
from service.records.fieldtypes import PATTERN_HINTS, RecordModel, ShortText
from service.records.receipt import DIGEST_PATTERN

# A file name without a directory: printable, one line, no path separators, and at
# least one character other than a dot (so never `.` or `..`).
_NAME_CHAR: Final = r"[^\x00-\x1F\x7F-\x9F/\\\u2028\u2029]"
_NAME_NOT_DOT: Final = r"[^\x00-\x1F\x7F-\x9F/\\\u2028\u2029.]"
FILE_NAME_PATTERN: Final = rf"^{_NAME_CHAR}*{_NAME_NOT_DOT}{_NAME_CHAR}*$"
PATTERN_HINTS[FILE_NAME_PATTERN] = (
    "must be a file name without a directory: no / or \\, no control characters, not . or .."
)
# RFC 6838 type/subtype, lowercase, without parameters.
MEDIA_TYPE_PATTERN: Final = r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$"
PATTERN_HINTS[MEDIA_TYPE_PATTERN] = "must be a lowercase media type such as application/pdf"
# The largest integer every JSON implementation holds exactly (RFC 7493 section 2.2).
MAX_ATTACHMENT_SIZE: Final = 2**53 - 1


class Attachment(RecordModel):
    """A file of the message: its bytes are checked against `digest` and `size`."""

    name: Annotated[str, StringConstraints(pattern=FILE_NAME_PATTERN, max_length=255)] = Field(
        description="the file name, for people; never used as a path"
    )
    media_type: Annotated[str, StringConstraints(pattern=MEDIA_TYPE_PATTERN)] = Field(
        description="the media type of the bytes (RFC 6838), checked against the bytes"
    )
    size: Annotated[int, Field(ge=1, le=MAX_ATTACHMENT_SIZE)] = Field(
        description="the number of bytes"
    )
    digest: Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)] = Field(
        description="sha-256: and the unpadded base64url SHA-256 digest of the bytes"
    )
    description: ShortText | None = Field(default=None, description="what the file is")


# The most files one body may name; a partner's `attachments.max_count` is lower or equal.
MAX_ATTACHMENTS: Final = 100


def distinct_digests(items: list[Attachment]) -> list[Attachment]:
    """After-validator of a body's `attachments`: two items never name the same bytes."""
    seen: set[str] = set()
    for item in items:
        if item.digest in seen:
            raise rule_error(f"names {item.digest} twice: each file is listed once")
        seen.add(item.digest)
    return items


# A body's list of attachments (protocol v1.1, docs/protocol.md 'Attachments (v1.1)').
Attachments = Annotated[
    list[Attachment],
    Field(max_length=MAX_ATTACHMENTS),
    AfterValidator(distinct_digests),
]
