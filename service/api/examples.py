"""Examples for the OpenAPI document: what successful responses look like."""

from __future__ import annotations

from typing import Any

_ROOT = "2hC0lW8r0r6g0G8xj9w7gk3k6rX2b7lYyqVQ5sPZJ0w="
_HASH = "VH0gX0pMz8n0I2m6Qmh7eD5tq1k1m0m8yX7c6r9QO8M="

ENTRY_EXAMPLE: dict[str, Any] = {
    "index": 4711,
    "leaf_data": "eyJhZ3JlZW1lbnQiOiJrei11ei0yMDE5IiwiLi4uIjoiLi4uIn0=",
    "entry": {
        "agreement": "kz-uz-2019",
        "code": None,
        "detail": {},
        "digest": "sha-256:PS2OYWb7X_Et_qcR0F-2Dt4j5ckYUYJc1B9UhmJsB9U",
        "event": "message.accepted",
        "from": "UZ:MIA",
        "index": 4711,
        "message_id": "01935c2e-6c58-70f8-843f-ecca6ffc2c2b",
        "node": "KZ:MIA",
        "outcome": "accepted",
        "party": "UZ:MIA",
        "purpose": "statistics",
        "rule": "uz-in-statistics",
        "time": "2026-11-24T16:00:18.416Z",
        "to": "KZ:MIA",
        "type": "statistics.migration-flows",
    },
}


def json_example(example: Any, description: str = "Success") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


def text_example(example: str, description: str = "Success") -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"example": example}}}


CHECKPOINT_EXAMPLE = (
    f"migex/KZ:MIA\n4712\n{_ROOT}\n\n— migex/KZ:MIA Ab3xYz...base64 signature...=\n"
)
ENTRIES_EXAMPLE = {"entries": [ENTRY_EXAMPLE]}
INCLUSION_EXAMPLE = {"index": 4711, "size": 4712, "hashes": [_HASH, _ROOT]}
CONSISTENCY_EXAMPLE = {"from": 4000, "to": 4712, "hashes": [_HASH, _ROOT]}
SEARCH_EXAMPLE = {"entries": [ENTRY_EXAMPLE], "next_cursor": 4711}
EXPORT_EXAMPLE = (
    '{"index":0,"leaf_data":"eyJ...","entry":{"event":"config.loaded","index":0,"...":"..."}}\n'
)
JWKS_EXAMPLE = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": "KZ:MIA#2026-01",
            "use": "sig",
        }
    ]
}
AUDIT_KEY_EXAMPLE = "migex/KZ:MIA+1a2b3c4d+AdhaiAYCqxf3VkW2dVLWhM5S5gHkq8N1CjzPfLbwOUwy\n"
HEALTH_EXAMPLE = {"status": "ok"}
READY_EXAMPLE = {"status": "ready", "party": "KZ:MIA", "keys": ["KZ:MIA#2026-01"]}
