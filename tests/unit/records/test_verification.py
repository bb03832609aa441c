"""citizenship.verification-request and citizenship.verification-response."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.records.bodies import accepted, example, refusal

REQUEST = "citizenship.verification-request"
RESPONSE = "citizenship.verification-response"


def _errors(msg_type: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(msg_type, body)]


def test_reason_other_needs_a_detail() -> None:
    body = example(REQUEST)
    body["reason"] = "other"
    assert _errors(REQUEST, body) == [("/body/reason_detail", "is required when reason is other")]


def test_reason_other_with_a_detail_is_accepted() -> None:
    body = example(REQUEST)
    body.update(reason="other", reason_detail="court request")
    accepted(REQUEST, body)


def test_request_without_person_is_refused() -> None:
    body = example(REQUEST)
    del body["person"]
    assert _errors(REQUEST, body) == [("/body/person", "is required")]


@pytest.mark.parametrize("result", ["confirmed", "not-confirmed", "insufficient-data", "unknown"])
def test_every_result_code_is_accepted(result: str) -> None:
    body = example(RESPONSE)
    body["result"] = result
    accepted(RESPONSE, body)


def test_not_found_without_particulars_is_accepted() -> None:
    accepted(RESPONSE, {"result": "not-found", "checked_on": "2025-05-06"})


def test_unlisted_result_code_is_refused() -> None:
    body = example(RESPONSE)
    body["result"] = "maybe"
    assert [p for p, _ in _errors(RESPONSE, body)] == ["/body/result"]


def test_confirmed_result_must_name_matched_fields() -> None:
    body = example(RESPONSE)
    body["matched_fields"] = []
    assert _errors(RESPONSE, body) == [
        ("/body/matched_fields", "a confirmed result must name the fields that matched")
    ]


def test_not_found_result_carries_no_matches_or_particulars() -> None:
    body = example(RESPONSE)
    body["result"] = "not-found"
    assert _errors(RESPONSE, body) == [
        ("/body/matched_fields", "a not-found result cannot have matched fields"),
        ("/body/person", "a not-found result cannot carry particulars"),
    ]


def test_needed_fields_only_with_insufficient_data() -> None:
    body = example(RESPONSE)
    body["needed_fields"] = ["documents"]
    assert _errors(RESPONSE, body) == [
        ("/body/needed_fields", "is only allowed with the result insufficient-data")
    ]


def test_insufficient_data_may_name_the_fields_needed() -> None:
    body = {
        "result": "insufficient-data",
        "checked_on": "2025-05-06",
        "needed_fields": ["identifiers", "documents"],
    }
    accepted(RESPONSE, body)


def test_matched_field_must_not_repeat() -> None:
    body = example(RESPONSE)
    body["matched_fields"] = ["birth_date", "birth_date"]
    assert _errors(RESPONSE, body) == [("/body/matched_fields", "must not list birth_date twice")]


def test_disclosed_person_may_omit_every_particular() -> None:
    body = example(RESPONSE)
    body["person"] = {}
    accepted(RESPONSE, body)


def test_disclosed_person_is_still_checked() -> None:
    body = example(RESPONSE)
    body["person"] = {"identifiers": [{"scheme": "KZ-IIN", "value": "791028302729"}]}
    assert _errors(RESPONSE, body) == [
        ("/body/person/identifiers/0/value", "IIN check digit does not match (expected 8)")
    ]


def test_disclosed_iin_disagreeing_with_disclosed_birth_date_is_a_warning() -> None:
    body = example(RESPONSE)
    body["person"] = {
        "birth_date": "1980-01-01",
        "identifiers": [{"scheme": "KZ-IIN", "value": "791028302728"}],
    }
    warnings = accepted(RESPONSE, body).warnings
    assert [w.path for w in warnings] == ["/body/person/identifiers/0/value"]


def test_response_needs_the_date_the_registry_was_checked() -> None:
    body = example(RESPONSE)
    del body["checked_on"]
    assert _errors(RESPONSE, body) == [("/body/checked_on", "is required")]
