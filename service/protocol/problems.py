"""Problem codes (docs/protocol.md section 6) and the one domain error the node raises.

Every refusal is a `Problem`; the API layer renders it as an RFC 9457 problem
document with `type` `urn:migex:problem:<code>`. Services never raise HTTPException.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_TYPE_PREFIX = "urn:migex:problem:"


@dataclass(frozen=True)
class ProblemKind:
    code: str
    status: int
    title: str


_KINDS = [
    # Protocol section 4, in check order.
    ProblemKind("too-large", 413, "Message too large"),
    ProblemKind("unsupported-media-type", 415, "Unsupported media type"),
    ProblemKind("malformed", 400, "Malformed message"),
    ProblemKind("bad-header", 400, "Bad JWS header"),
    ProblemKind("unknown-key", 401, "Unknown or revoked key"),
    ProblemKind("alg-not-allowed", 401, "Algorithm not allowed"),
    ProblemKind("bad-signature", 401, "Signature does not verify"),
    ProblemKind("bad-envelope", 422, "Bad envelope"),
    ProblemKind("wrong-audience", 422, "Wrong audience"),
    ProblemKind("stale", 422, "Message time outside the allowed skew"),
    ProblemKind("agreement", 403, "Agreement does not allow this message"),
    ProblemKind("forbidden", 403, "No access rule allows this message"),
    ProblemKind("schema", 422, "Body invalid for its type"),
    ProblemKind("conflict", 409, "Message id reused with different content"),
    ProblemKind("rate-limited", 429, "Rate limit exceeded"),
    # Attachments, protocol v1.1 (docs/protocol.md, 'Attachments (v1.1)').
    ProblemKind("attachments-not-allowed", 403, "The partner may not send attachments"),
    ProblemKind("attachment-too-many", 413, "Too many attachments"),
    ProblemKind("attachment-too-large", 413, "Attachment too large"),
    ProblemKind("attachment-media-type", 415, "Attachment media type not allowed or not matched"),
    ProblemKind("attachment-size", 422, "Attachment bytes do not match the declared size"),
    ProblemKind("attachment-digest", 422, "Attachment bytes do not match the declared digest"),
    ProblemKind("upload-offset", 409, "Upload offset is not the held offset"),
    ProblemKind("attachment-incomplete", 410, "Attachments not received in time"),
    # Node-level problems outside the protocol table.
    ProblemKind("unauthorized", 401, "Credentials missing or invalid"),
    ProblemKind("insufficient-role", 403, "Credentials lack the required role"),
    ProblemKind("not-found", 404, "Not found"),
    ProblemKind("method-not-allowed", 405, "Method not allowed"),
    ProblemKind("bad-request", 400, "Bad request"),
    ProblemKind("invalid-parameters", 422, "Invalid request parameters"),
    ProblemKind("request-timeout", 408, "Request not received in time"),
    ProblemKind("headers-too-large", 431, "Request header fields too large"),
    ProblemKind("unavailable", 503, "Service temporarily unavailable"),
    ProblemKind("audit-inconsistent", 500, "Audit log index disagrees with its entries"),
    # The witness endpoint (docs/protocol.md, "Witnessing").
    ProblemKind("unknown-log", 404, "Log not witnessed by this node"),
    ProblemKind("untrusted-checkpoint", 403, "No trusted signature on the checkpoint"),
    ProblemKind("old-size", 409, "Old size is not the latest cosigned size"),
    ProblemKind("inconsistent", 422, "Checkpoint inconsistent with the cosigned one"),
    ProblemKind("stored-unreadable", 500, "Stored bytes do not open"),
    ProblemKind("internal", 500, "Internal error"),
]

KINDS: dict[str, ProblemKind] = {k.code: k for k in _KINDS}


@dataclass
class Problem(Exception):
    """A refusal with a stable code. `extra` members are added to the document."""

    code: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in KINDS:
            raise ValueError(f"unknown problem code {self.code!r}")
        super().__init__(f"{self.code}: {self.detail}")

    @property
    def status(self) -> int:
        return KINDS[self.code].status

    @property
    def title(self) -> str:
        return KINDS[self.code].title

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc
