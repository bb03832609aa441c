"""validate_body and body_json_schema: the contract other packages call."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from service.partners.agreements import EXCHANGE_TYPES
from service.protocol.problems import Problem
from service.records.examples import EXAMPLES
from service.records.registry import MESSAGE_TYPES, body_json_schema, validate_body
from service.records.verification import VerificationRequest
from tests.unit.records.bodies import example, paths, refusal

REQUEST = "citizenship.verification-request"
_FULLWIDTH_YEAR = "".join(chr(0xFF10 + int(d)) for d in "1991")


def test_message_types_are_the_protocol_types_receipt_and_the_v1_1_proofs() -> None:
    assert MESSAGE_TYPES == (
        "statistics.migration-flows",
        "citizenship.verification-request",
        "citizenship.verification-response",
        "migration.violation-notice",
        "readmission.request",
        "readmission.response",
        "experience.document",
        "receipt",
        "audit.inclusion-proofs",
    )


def test_every_exchange_type_has_a_body_model_and_a_row_in_the_protocol_table() -> None:
    protocol = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text("utf-8")
    assert sorted((*EXCHANGE_TYPES, "receipt")) == sorted(MESSAGE_TYPES)
    for msg_type in EXCHANGE_TYPES:
        assert re.search(rf"^\| (`[a-z.-]+` / )?`{re.escape(msg_type)}`", protocol, re.M), msg_type


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
def test_every_example_validates(msg_type: str) -> None:
    assert validate_body(msg_type, example(msg_type)).warnings == []


def test_validated_model_is_the_typed_body() -> None:
    validated = validate_body(REQUEST, example(REQUEST))
    assert isinstance(validated.model, VerificationRequest)
    assert validated.model.person.birth_date.isoformat() == "1991-03-14"


def test_validated_model_dumps_back_to_the_json_it_came_from() -> None:
    body = example("migration.violation-notice")
    model = validate_body("migration.violation-notice", body).model
    assert model.model_dump(mode="json", exclude_unset=True) == body


def test_unknown_message_type_is_a_schema_problem() -> None:
    with pytest.raises(Problem) as caught:
        validate_body("citizenship.guess", {})
    assert caught.value.code == "schema"
    assert caught.value.extra["errors"][0]["path"] == "/type"


@pytest.mark.parametrize("body", [[], "x", None, 1])
def test_body_that_is_not_an_object_is_refused_at_body(body: Any) -> None:
    assert refusal(REQUEST, body) == [{"path": "/body", "message": "must be a JSON object"}]


def test_refusal_detail_counts_the_errors() -> None:
    body = example(REQUEST)
    del body["reason"]
    del body["person"]
    with pytest.raises(Problem) as caught:
        validate_body(REQUEST, body)
    assert caught.value.detail == f"body invalid for {REQUEST}: 2 errors"
    assert caught.value.status == 422


def test_body_with_several_errors_lists_every_one() -> None:
    body = example(REQUEST)
    person = body["person"]
    body["reason"] = "curiosity"
    body["extra"] = 1
    person["sex"] = "male"
    person["birth_date"] = "14.03.1991"
    person["identifiers"][0]["value"] = "910314401231"
    person["documents"][0]["mrz"][1] = person["documents"][0]["mrz"][1][:-1] + "0"
    person["names"]["latin"]["surname"] = "zhaksybekova"
    assert paths(REQUEST, body) == [
        "/body/reason",
        "/body/person/names/latin/surname",
        "/body/person/birth_date",
        "/body/person/sex",
        "/body/person/identifiers/0/value",
        "/body/person/documents/0/mrz/1",
        "/body/extra",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("14.03.1991", "must be a date written as a string YYYY-MM-DD"),
        ("1991-3-14", "must be a date written as a string YYYY-MM-DD"),
        ("19910314", "must be a date written as a string YYYY-MM-DD"),
        ("1991-03-14T00:00:00", "must be a date written as a string YYYY-MM-DD"),
        (19910314, "must be a date written as a string YYYY-MM-DD"),
        ("1991-02-30", "is not a calendar date"),
        (_FULLWIDTH_YEAR + "-03-14", "must be a date written as a string YYYY-MM-DD"),
    ],
)
def test_dates_must_be_iso_calendar_dates(value: Any, message: str) -> None:
    body = example(REQUEST)
    body["person"]["birth_date"] = value
    assert refusal(REQUEST, body) == [{"path": "/body/person/birth_date", "message": message}]


def test_types_are_not_coerced() -> None:
    body = example("readmission.request")
    body["escort_needed"] = 0
    assert refusal("readmission.request", body) == [
        {"path": "/body/escort_needed", "message": "must be true or false"}
    ]


def test_member_names_are_escaped_in_pointers() -> None:
    body = example(REQUEST)
    body["person"]["a/b~c"] = 1
    assert refusal(REQUEST, body) == [
        {"path": "/body/person/a~1b~0c", "message": "is not a member of this object: remove it"}
    ]


def test_invalid_unicode_is_refused_not_raised() -> None:
    body = example(REQUEST)
    body["case_reference"] = "\ud800"
    assert paths(REQUEST, body) == ["/body/case_reference"]


def test_errors_do_not_repeat_the_failing_value() -> None:
    body = example(REQUEST)
    body["person"]["identifiers"][0]["value"] = "91031440123X"
    errors = refusal(REQUEST, body)
    assert "91031440123X" not in str(errors)


def test_body_json_schema_is_a_fresh_copy() -> None:
    first = body_json_schema("receipt")
    first["title"] = "changed"
    assert body_json_schema("receipt")["title"] == "receipt"


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES)
def test_body_json_schema_names_its_dialect_and_id(msg_type: str) -> None:
    schema = body_json_schema(msg_type)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:migex:schema:{msg_type}"
    assert schema["additionalProperties"] is False


def test_body_json_schema_of_unknown_type_is_a_schema_problem() -> None:
    with pytest.raises(Problem):
        body_json_schema("nope")


def test_every_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(MESSAGE_TYPES)
