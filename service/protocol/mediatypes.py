"""Media types as the node compares them: the type and subtype of a `Content-Type`
value, lowercased, without its parameters (RFC 9110 section 8.3.1)."""

from __future__ import annotations

from typing import Final

# A JWS in compact serialization (RFC 7515 section 9.2.1): messages and receipts.
JOSE: Final = "application/jose"
JSON: Final = "application/json"


def essence(content_type: str | None) -> str:
    """`text/plain; charset=utf-8` -> `text/plain`; "" for no value."""
    return (content_type or "").split(";", 1)[0].strip().lower()
