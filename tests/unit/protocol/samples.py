"""Sample envelopes for the protocol tests."""

from __future__ import annotations

from typing import Any


def envelope_dict(**changes: Any) -> dict[str, Any]:
    """A valid envelope as a JSON object, with `changes` applied."""
    obj: dict[str, Any] = {
        "v": 1,
        "id": "018f3c1e-7a2b-7c3d-8e4f-0123456789ab",
        "iss": "KZ:MIA",
        "aud": "UZ:MIA",
        "iat": 1_764_000_000,
        "type": "citizenship.verification-request",
        "agreement": "kz-uz-2019",
        "purpose": "identity-verification",
        "reply_to": None,
        "body": {"person": {"iin": "900101300123"}, "reason": "visa-application"},
    }
    obj.update(changes)
    return obj
