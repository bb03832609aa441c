"""Receipts: digest, construction and checking."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.protocol.envelope import Envelope, encode_payload, parse_payload
from service.protocol.jsonstrict import dumps
from service.protocol.receipts import (
    ReceiptError,
    check_receipt,
    message_digest,
    receipt_envelope,
)
from tests.unit.protocol.samples import envelope_dict

SENT_BYTES = b"eyJhbGciOiJFZDI1NTE5In0.e30.c2ln"
RECEIPT_ID = "019a1b2c-3d4e-7f60-8a1b-2c3d4e5f6a7b"


@pytest.fixture
def sent() -> Envelope:
    return parse_payload(dumps(envelope_dict()))


@pytest.fixture
def receipt(sent: Envelope) -> Envelope:
    return receipt_envelope(
        received=sent,
        node_party="UZ:MIA",
        message_id=RECEIPT_ID,
        iat=1_764_000_003,
        digest=message_digest(SENT_BYTES),
        audit_index=4711,
    )


def _with_body(receipt: Envelope, **changes: Any) -> Envelope:
    return dataclasses.replace(receipt, body={**receipt.body, **changes})


def test_message_digest_matches_sha256_known_answer() -> None:
    # SHA-256("abc") = ba7816bf...f20015ad (FIPS 180-2 appendix B.1).
    assert message_digest(b"abc") == "sha-256:ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"


def test_message_digest_changes_with_a_single_byte() -> None:
    assert message_digest(SENT_BYTES) != message_digest(SENT_BYTES[:-1] + b"m")


def test_receipt_envelope_answers_the_received_message(sent: Envelope, receipt: Envelope) -> None:
    assert (receipt.type, receipt.iss, receipt.aud, receipt.reply_to) == (
        "receipt",
        "UZ:MIA",
        "KZ:MIA",
        sent.id,
    )
    assert (receipt.agreement, receipt.purpose) == (sent.agreement, sent.purpose)
    assert (receipt.id, receipt.iat, receipt.v) == (RECEIPT_ID, 1_764_000_003, 1)


def test_receipt_envelope_body_has_status_digest_and_index(receipt: Envelope) -> None:
    assert receipt.body == {
        "status": "accepted",
        "digest": message_digest(SENT_BYTES),
        "audit_index": 4711,
    }


def test_receipt_envelope_encodes_as_a_valid_payload(receipt: Envelope) -> None:
    assert parse_payload(encode_payload(receipt)) == receipt


def test_check_receipt_returns_the_audit_index(sent: Envelope, receipt: Envelope) -> None:
    assert check_receipt(receipt, sent=sent, sent_bytes=SENT_BYTES) == 4711


def test_check_receipt_accepts_audit_index_zero(sent: Envelope, receipt: Envelope) -> None:
    assert check_receipt(_with_body(receipt, audit_index=0), sent=sent, sent_bytes=SENT_BYTES) == 0


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("type", "citizenship.verification-response"),
        ("iss", "TJ:MIA"),
        ("aud", "UZ:MIA"),
        ("reply_to", "018f3c1e-7a2b-7c3d-8e4f-0123456789ac"),
        ("reply_to", None),
        ("agreement", "cis-1998"),
        ("purpose", "statistics"),
    ],
)
def test_check_receipt_refuses_a_mismatched_envelope_member(
    sent: Envelope, receipt: Envelope, member: str, value: Any
) -> None:
    with pytest.raises(ReceiptError, match=member):
        check_receipt(
            dataclasses.replace(receipt, **{member: value}), sent=sent, sent_bytes=SENT_BYTES
        )


def test_check_receipt_refuses_a_digest_of_other_bytes(sent: Envelope, receipt: Envelope) -> None:
    with pytest.raises(ReceiptError, match="digest"):
        check_receipt(receipt, sent=sent, sent_bytes=SENT_BYTES + b"x")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "refused"}, "status"),
        ({"audit_index": -1}, "audit_index"),
        ({"audit_index": True}, "audit_index"),
        ({"audit_index": 1.0}, "audit_index"),
        ({"audit_index": "4711"}, "audit_index"),
        ({"note": "extra"}, "body members"),
    ],
)
def test_check_receipt_refuses_a_bad_body(
    sent: Envelope, receipt: Envelope, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReceiptError, match=message):
        check_receipt(_with_body(receipt, **changes), sent=sent, sent_bytes=SENT_BYTES)


def test_check_receipt_refuses_a_body_missing_a_member(sent: Envelope, receipt: Envelope) -> None:
    body = {k: v for k, v in receipt.body.items() if k != "audit_index"}
    with pytest.raises(ReceiptError, match="body members"):
        check_receipt(dataclasses.replace(receipt, body=body), sent=sent, sent_bytes=SENT_BYTES)


def test_receipt_error_is_a_value_error() -> None:
    assert issubclass(ReceiptError, ValueError)
