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
ENTRIES_EXAMPLE: dict[str, Any] = {"entries": [ENTRY_EXAMPLE]}
INCLUSION_EXAMPLE: dict[str, Any] = {"index": 4711, "size": 4712, "hashes": [_HASH, _ROOT]}
CONSISTENCY_EXAMPLE: dict[str, Any] = {"from": 4000, "to": 4712, "hashes": [_HASH, _ROOT]}
SEARCH_EXAMPLE: dict[str, Any] = {"entries": [ENTRY_EXAMPLE], "next_cursor": 4711}
EXPORT_EXAMPLE = (
    '{"index":0,"leaf_data":"eyJ...","entry":{"event":"config.loaded","index":0,"...":"..."}}\n'
)
JWKS_EXAMPLE: dict[str, Any] = {
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
HEALTH_EXAMPLE: dict[str, Any] = {"status": "ok"}
READY_EXAMPLE: dict[str, Any] = {"status": "ready", "party": "KZ:MIA", "keys": ["KZ:MIA#2026-01"]}


# -- the local API ------------------------------------------------------------------
_SENT = "01935c2e-6c58-70f8-843f-ecca6ffc2c2b"
_REPLY = "01935c31-0a4e-7b21-9d3c-5f0e8a7b6c21"
STATUS_EXAMPLE: dict[str, Any] = {
    "id": _SENT,
    "to": "KG:SRS",
    "type": "citizenship.verification-request",
    "agreement": "cis-1998",
    "purpose": "identity-verification",
    "reply_to": None,
    "status": "delivered",
    "audit_index": 4711,
    "removed_fields": [],
    "attempts": [
        {
            "attempt": 1,
            "at": 1795000000.25,
            "outcome": "delivered",
            "http_status": 201,
            "error": None,
        }
    ],
    "next_attempt_at": None,
    "last_error": None,
    "receipt": {
        "jws": "eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoiS0c6U1JTIzIwMjYtMDEiLCJ0eXAiOiJtaWdleCtqd3MifQ.eyJ...In0.c2ln",
        "payload": {
            "v": 1,
            "id": "01935c2e-7001-7a3c-8e2f-1b2c3d4e5f60",
            "iss": "KG:SRS",
            "aud": "KZ:MIA",
            "iat": 1795000000,
            "type": "receipt",
            "agreement": "cis-1998",
            "purpose": "identity-verification",
            "reply_to": _SENT,
            "body": {
                "status": "accepted",
                "digest": "sha-256:PS2OYWb7X_Et_qcR0F-2Dt4j5ckYUYJc1B9UhmJsB9U",
                "audit_index": 1288,
            },
        },
        "partner_audit_index": 1288,
    },
    "replies": [
        {
            "id": _REPLY,
            "from": "KG:SRS",
            "type": "citizenship.verification-response",
            "audit_index": 4790,
        }
    ],
    "delivery_proof": {"index": 1288, "tree_size": 1300, "stored_at": 1795000003.5},
}
INBOX_EXAMPLE: dict[str, Any] = {
    "messages": [
        {
            "id": _REPLY,
            "from": "KG:SRS",
            "type": "citizenship.verification-response",
            "agreement": "cis-1998",
            "purpose": "identity-verification",
            "reply_to": _SENT,
            "received_at": 1795000420.5,
            "audit_index": 4790,
            "acked": False,
            "body": {
                "result": "confirmed",
                "checked_on": "2026-11-20",
                "matched_fields": ["names.latin", "birth_date"],
                "person": {"birth_date": "1991-03-14"},
            },
            "purged": False,
        }
    ],
    "next_cursor": None,
}
ACK_EXAMPLE: dict[str, Any] = {"id": _REPLY, "from": "KG:SRS", "acked": True, "changed": True}
OPERATOR_OUTBOX_EXAMPLE: dict[str, Any] = {
    "state": "failed",
    "messages": [
        {
            "message_id": _SENT,
            "recipient": "TJ:MIA",
            "type": "statistics.migration-flows",
            "status": "failed",
            "attempts": 10,
            "last_error": "transport",
            "created_at": 1795000000.0,
            "next_attempt_at": 1795001843.2,
        }
    ],
}
RETRY_EXAMPLE: dict[str, Any] = {"id": _SENT, "status": "queued"}
PROOF_EXAMPLE = (
    "c2sp.org/tlog-proof@v1\n"
    "extra eyJhZ3JlZW1lbnQiOiJjaXMtMTk5OCIsImNvZGUiOm51bGwsImRldGFpbCI6e30s...\n"
    "index 1288\n"
    "2tjpnuoVZLT9rb+9lH8hlUZtneeKMda7Qwl/qSdY5g0=\n"
    "\n"
    "migex/KG:SRS\n1300\nJmLtoRdbb10Xgr81CRs6hfSZi+DCDUCrGN4obivZYno=\n\n"
    "\u2014 migex/KG:SRS N2z9P8aW...base64 signature...=\n"
    "\u2014 migex/KZ:MIA/witness NYeFnAAAAABr...base64 cosignature...=\n"
    "\u2014 migex/UZ:MIA/witness VmXqqwAAAABr...base64 cosignature...=\n"
)

HOLD_EXAMPLE: dict[str, Any] = {
    "case_reference": "KG-SRS/2025/001873",
    "reason": "court order 2-117/2026",
    "placed_at": 1795000000.0,
    "placed_by": "operator-kz-1",
}
HOLDS_EXAMPLE: dict[str, Any] = {"holds": [HOLD_EXAMPLE]}
HOLD_CHANGED_EXAMPLE: dict[str, Any] = {
    "case_reference": "KG-SRS/2025/001873",
    "active": True,
    "audit_index": 4712,
}
DISCLOSURES_EXAMPLE: dict[str, Any] = {
    "subjects": ["5b1f0c3e9a7d4e21b8c6f0a2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c"],
    "disclosures": [
        {
            "message_id": "01935c2e-6c58-70f8-843f-ecca6ffc2c2b",
            "direction": "out",
            "partner": "UZ:MIA",
            "at": 1795000000.0,
            "type": "citizenship.verification-response",
            "agreement": "kz-uz-2019",
            "purpose": "identity-verification",
            "reply_to": "01935c2d-1f00-7a2b-9c3d-4e5f60718293",
            "status": "delivered",
            "audit_index": 4711,
            "fields": ["checked_on", "matched_fields", "person.names.latin.surname", "result"],
            "removed_fields": ["person.birth_date", "person.identifiers"],
            "via": "reply",
        }
    ],
    "truncated": False,
    "audit_index": 4713,
}
