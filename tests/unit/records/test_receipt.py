"""receipt body (docs/protocol.md section 4)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from tests.unit.records.bodies import accepted, example, paths

TYPE = "receipt"
DIGEST = "sha-256:" + base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).rstrip(b"=").decode()


def test_receipt_with_a_real_digest_is_valid() -> None:
    accepted(TYPE, {"status": "accepted", "digest": DIGEST, "audit_index": 0})


@pytest.mark.parametrize(
    "digest",
    [
        DIGEST.replace("sha-256:", "sha256:"),
        DIGEST + "=",
        DIGEST[:-1],
        DIGEST[:-1] + "B",  # the last character must leave its 2 spare bits zero
        DIGEST.replace("sha-256:", "sha-256:+")[:51],
    ],
)
def test_malformed_digest_is_refused(digest: str) -> None:
    body = example(TYPE)
    body["digest"] = digest
    assert paths(TYPE, body) == ["/body/digest"]


@pytest.mark.parametrize("index", [-1, 2**63, True, 1.0, "5"])
def test_audit_index_must_be_a_non_negative_64_bit_integer(index: Any) -> None:
    body = example(TYPE)
    body["audit_index"] = index
    assert paths(TYPE, body) == ["/body/audit_index"]


def test_status_other_than_accepted_is_refused() -> None:
    body = example(TYPE)
    body["status"] = "refused"
    assert paths(TYPE, body) == ["/body/status"]


def test_receipt_with_extra_member_is_refused() -> None:
    body = example(TYPE)
    body["note"] = "x"
    assert paths(TYPE, body) == ["/body/note"]
