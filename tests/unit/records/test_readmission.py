"""readmission.request and readmission.response."""

from __future__ import annotations

from typing import Any

from tests.unit.records.bodies import accepted, example, refusal

REQUEST = "readmission.request"
RESPONSE = "readmission.response"


def _errors(msg_type: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(msg_type, body)]


def test_example_request_and_response_are_valid() -> None:
    accepted(REQUEST, example(REQUEST))
    accepted(RESPONSE, example(RESPONSE))


def test_request_without_evidence_is_refused() -> None:
    body = example(REQUEST)
    body["nationality_evidence"] = []
    assert _errors(REQUEST, body) == [("/body/nationality_evidence", "must have at least 1 item")]


def test_evidence_basis_must_be_proof_or_prima_facie() -> None:
    body = example(REQUEST)
    body["nationality_evidence"][0]["basis"] = "hearsay"
    assert [p for p, _ in _errors(REQUEST, body)] == ["/body/nationality_evidence/0/basis"]


def test_escort_reason_without_escort_is_refused() -> None:
    body = example(REQUEST)
    body["escort_reason"] = "resisted removal"
    assert _errors(REQUEST, body) == [
        ("/body/escort_reason", "is only allowed when escort_needed is true")
    ]


def test_escort_needed_must_be_a_boolean() -> None:
    body = example(REQUEST)
    body["escort_needed"] = "no"
    assert _errors(REQUEST, body) == [("/body/escort_needed", "must be true or false")]


def test_evidence_passport_must_agree_with_the_person() -> None:
    body = example(REQUEST)
    body["person"]["birth_date"] = "1988-11-06"
    assert _errors(REQUEST, body) == [
        (
            "/body/nationality_evidence/0/document/mrz/1",
            "MRZ birth date (positions 14-19) does not agree with the holder's birth_date",
        )
    ]


def test_evidence_passport_name_differing_from_the_person_is_a_warning() -> None:
    body = example(REQUEST)
    body["person"]["names"]["latin"]["surname"] = "RAKHIMOV"
    warnings = accepted(REQUEST, body).warnings
    assert [w.path for w in warnings] == ["/body/nationality_evidence/0/document/mrz/0"]


def test_request_needs_a_case_reference() -> None:
    body = example(REQUEST)
    del body["case_reference"]
    assert _errors(REQUEST, body) == [("/body/case_reference", "is required")]


def test_refusal_without_reasons_is_refused() -> None:
    body = example(RESPONSE)
    body.update(decision="refused", deadlines={})
    del body["transfer"]
    assert _errors(RESPONSE, body) == [("/body/reasons", "a refusal must give at least one reason")]


def test_refusal_with_a_reason_is_accepted() -> None:
    body = example(RESPONSE)
    body.update(
        decision="refused",
        deadlines={},
        reasons=[{"code": "nationality-not-established"}],
    )
    del body["transfer"]
    accepted(RESPONSE, body)


def test_reason_other_needs_a_detail() -> None:
    body = example(RESPONSE)
    body.update(decision="refused", deadlines={}, reasons=[{"code": "other"}])
    del body["transfer"]
    assert _errors(RESPONSE, body) == [("/body/reasons/0/detail", "is required when code is other")]


def test_more_information_needed_must_say_what() -> None:
    body = example(RESPONSE)
    body.update(decision="more-information-needed", deadlines={"reply_by": "2025-05-10"})
    del body["transfer"]
    assert _errors(RESPONSE, body) == [
        ("/body/information_needed", "must say which information is needed")
    ]


def test_more_information_needed_with_an_extended_deadline_is_accepted() -> None:
    body = example(RESPONSE)
    body.update(
        decision="more-information-needed",
        information_needed=["a copy of the internal passport"],
        deadlines={"reply_by": "2025-05-10", "information_by": "2025-04-20"},
    )
    del body["transfer"]
    accepted(RESPONSE, body)


def test_information_needed_with_acceptance_is_refused() -> None:
    body = example(RESPONSE)
    body["information_needed"] = ["photographs"]
    assert _errors(RESPONSE, body) == [
        ("/body/information_needed", "is only allowed with more-information-needed")
    ]


def test_acceptance_needs_a_transfer_deadline() -> None:
    body = example(RESPONSE)
    body["deadlines"] = {}
    assert _errors(RESPONSE, body) == [
        ("/body/deadlines/transfer_by", "is required when the request is accepted")
    ]


def test_transfer_arrangements_with_a_refusal_are_refused() -> None:
    body = example(RESPONSE)
    body.update(decision="refused", reasons=[{"code": "insufficient-evidence"}], deadlines={})
    assert _errors(RESPONSE, body) == [
        ("/body/transfer", "is only allowed when the request is accepted")
    ]


def test_deadline_before_the_decision_is_refused() -> None:
    body = example(RESPONSE)
    body["deadlines"]["reply_by"] = "2025-03-27"
    assert _errors(RESPONSE, body) == [
        ("/body/deadlines/reply_by", "must not be before decision_date")
    ]


def test_transfer_after_its_deadline_is_refused() -> None:
    body = example(RESPONSE)
    body["transfer"]["date"] = "2025-06-27"
    assert _errors(RESPONSE, body) == [
        ("/body/transfer/date", "must not be after deadlines/transfer_by")
    ]


def test_transfer_before_the_decision_is_refused() -> None:
    body = example(RESPONSE)
    body["transfer"]["date"] = "2025-03-27"
    assert _errors(RESPONSE, body) == [("/body/transfer/date", "must not be before decision_date")]
