"""What a body declares about its attachments, and a partner's limits on them
(docs/protocol.md, 'Attachments (v1.1)', "The receiver's limits"): pure decisions that
raise a Problem with the refusal's own code."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from service.protocol.b64 import b64url_encode
from service.protocol.problems import Problem

# The member of a body that names its attachments.
MEMBER: Final = "attachments"


@dataclass(frozen=True)
class AttachmentLimits:
    """A partner's limits: how many files, how large, of which media types."""

    max_count: int
    max_bytes: int
    max_total_bytes: int
    media_types: frozenset[str]


@dataclass(frozen=True)
class Declared:
    """One attachment as the signed body names it."""

    position: int
    digest: str
    size: int
    media_type: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Declared:
        return cls(
            int(item["position"]),
            str(item["digest"]),
            int(item["size"]),
            str(item["media_type"]),
            str(item["name"]),
        )


def declared_in(body: Mapping[str, Any]) -> list[Declared]:
    """The attachments a body names, in body order (a body already validated)."""
    items = body.get(MEMBER)
    if not items:
        return []
    return [
        Declared(i, item["digest"], item["size"], item["media_type"], item["name"])
        for i, item in enumerate(items)
    ]


def check_declared(party: str, limits: AttachmentLimits | None, items: Sequence[Declared]) -> None:
    """Refuse declarations that `party`'s limits do not allow, before any byte moves."""
    if not items:
        return
    if limits is None:
        raise Problem(
            "attachments-not-allowed",
            f"{party} may not exchange attachments with this node (protocol v1)",
        )
    if len(items) > limits.max_count:
        raise Problem(
            "attachment-too-many",
            f"the message names {len(items)} attachments; the limit is {limits.max_count}",
        )
    for item in items:
        if item.size > limits.max_bytes:
            raise Problem(
                "attachment-too-large",
                f"attachment {item.position} is {item.size} bytes; the limit is {limits.max_bytes}",
            )
    total = sum(item.size for item in items)
    if total > limits.max_total_bytes:
        raise Problem(
            "attachment-too-large",
            f"the attachments total {total} bytes; the limit is {limits.max_total_bytes}",
        )
    for item in items:
        if item.media_type not in limits.media_types:
            raise Problem(
                "attachment-media-type",
                f"attachment {item.position} is declared as {item.media_type}, which "
                f"{party} may not send (allowed: {', '.join(sorted(limits.media_types))})",
            )


def upload_key(sender: str, message_id: str, digest: str) -> str:
    """The staging key of one attachment of one message (the store's key alphabet)."""
    material = f"{sender}\n{message_id}\n{digest}".encode()
    return b64url_encode(hashlib.sha256(material).digest())


def summary(items: Sequence[Declared]) -> list[dict[str, Any]]:
    """What an audit entry and a receipt say of each file: digest, size, media type."""
    return [{"digest": i.digest, "size": i.size, "media_type": i.media_type} for i in items]
