"""A person's particulars, checked through citizenship.verification-request."""

from __future__ import annotations

from typing import Any

import pytest

from service.records.mrz import check_digit
from tests.unit.records.bodies import accepted, example, paths, refusal

TYPE = "citizenship.verification-request"
PERSON = "/body/person"


def _person(body: dict[str, Any]) -> dict[str, Any]:
    person: dict[str, Any] = body["person"]
    return person


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(TYPE, body)]


def test_example_person_is_valid_without_warnings() -> None:
    assert accepted(TYPE, example(TYPE)).warnings == []


def test_name_must_be_given_in_latin_or_cyrillic() -> None:
    body = example(TYPE)
    _person(body)["names"] = {}
    assert _errors(body) == [
        (f"{PERSON}/names", "must give the name in latin, in cyrillic, or both")
    ]


def test_cyrillic_name_alone_is_enough() -> None:
    body = example(TYPE)
    person = _person(body)
    del person["names"]["latin"]
    person["documents"] = []
    accepted(TYPE, body)


@pytest.mark.parametrize(
    "surname", ["Zhaksybekova", "ZHAKSYBEKOVA ", "ZHAKSYBEKOVA-ALI", "ŽAKSYBEKOVA"]
)
def test_latin_name_must_be_written_as_in_the_mrz(surname: str) -> None:
    body = example(TYPE)
    _person(body)["names"]["latin"]["surname"] = surname
    assert paths(TYPE, body) == [f"{PERSON}/names/latin/surname"]


@pytest.mark.parametrize("surname", ["Жаксыбекова-Әлі", "Раҳимов", "Д'Артаньян"])
def test_cyrillic_names_of_the_region_pass(surname: str) -> None:
    body = example(TYPE)
    _person(body)["names"]["cyrillic"]["surname"] = surname
    accepted(TYPE, body)


def test_cyrillic_name_in_latin_letters_is_refused() -> None:
    body = example(TYPE)
    _person(body)["names"]["cyrillic"]["given_names"] = "Aigerim"
    assert paths(TYPE, body) == [f"{PERSON}/names/cyrillic/given_names"]


def test_iin_with_wrong_check_digit_is_refused_at_its_value() -> None:
    body = example(TYPE)
    _person(body)["identifiers"] = [{"scheme": "KZ-IIN", "value": "791028302729"}]
    assert _errors(body) == [
        (f"{PERSON}/identifiers/0/value", "IIN check digit does not match (expected 8)")
    ]


def test_unknown_identifier_scheme_is_refused() -> None:
    body = example(TYPE)
    _person(body)["identifiers"] = [{"scheme": "RU-SNILS", "value": "1"}]
    assert paths(TYPE, body) == [f"{PERSON}/identifiers/0/scheme"]


def test_repeated_identifier_is_refused() -> None:
    body = example(TYPE)
    person = _person(body)
    person["identifiers"] = person["identifiers"] * 2
    assert _errors(body) == [(f"{PERSON}/identifiers/1", "repeats identifier 0")]


def test_kg_pin_of_fourteen_digits_is_accepted() -> None:
    body = example(TYPE)
    _person(body)["identifiers"].append({"scheme": "KG-PIN", "value": "21503199100123"})
    accepted(TYPE, body)


def test_iin_encoding_another_birth_date_is_only_a_warning() -> None:
    body = example(TYPE)
    _person(body)["identifiers"] = [{"scheme": "KZ-IIN", "value": "791028302728"}]
    _person(body)["sex"] = "M"
    _person(body)["documents"] = []
    warnings = accepted(TYPE, body).warnings
    assert [(w.path, w.message) for w in warnings] == [
        (
            f"{PERSON}/identifiers/0/value",
            "KZ-IIN encodes a birth date other than birth_date; accepted, as numbers "
            "need not encode the birth date",
        )
    ]


def test_iin_encoding_another_sex_is_only_a_warning() -> None:
    body = example(TYPE)
    _person(body)["sex"] = "M"
    _person(body)["documents"] = []
    warnings = accepted(TYPE, body).warnings
    assert [w.path for w in warnings] == [f"{PERSON}/identifiers/0/value"]
    assert "encodes a sex other than sex" in warnings[0].message


def test_iin_that_encodes_no_birth_date_gives_no_warning() -> None:
    body = example(TYPE)
    # 12 digits, valid check digit, century digit 0: encodes nothing.
    _person(body)["identifiers"] = [{"scheme": "KZ-IIN", "value": "910314001234"}]
    assert accepted(TYPE, body).warnings == []


def test_pinfl_check_digit_failure_is_only_a_warning() -> None:
    body = example(TYPE)
    _person(body)["identifiers"].append({"scheme": "UZ-PINFL", "value": "41403910260454"})
    warnings = accepted(TYPE, body).warnings
    assert [w.path for w in warnings] == [f"{PERSON}/identifiers/1/value"]
    assert warnings[0].message.startswith("PINFL check digit does not match (expected")


@pytest.mark.parametrize("code", ["KZ", "kaz", "ZZZ", "UTO"])
def test_citizenship_must_be_a_known_alpha3_code(code: str) -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = [code]
    assert paths(TYPE, body)[0] == f"{PERSON}/citizenships/0"


def test_citizenships_must_not_repeat() -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = ["KAZ", "KAZ"]
    assert _errors(body) == [(f"{PERSON}/citizenships", "must not list KAZ twice")]


def test_stateless_cannot_be_combined_with_a_citizenship() -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = ["XXA", "KAZ"]
    assert _errors(body) == [(f"{PERSON}/citizenships", "XXA cannot be combined with other codes")]


def test_dual_citizen_passport_agrees_with_either_citizenship() -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = ["RUS", "KAZ"]
    accepted(TYPE, body)


def test_empty_citizenships_are_refused() -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = []
    assert _errors(body) == [(f"{PERSON}/citizenships", "must have at least 1 item")]


def _document(body: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = _person(body)["documents"][0]
    return document


DOC = f"{PERSON}/documents/0"


def test_expiry_before_issue_is_refused() -> None:
    body = example(TYPE)
    _document(body)["issue_date"] = "2029-06-20"
    assert ("/body/person/documents/0/expiry_date", "must be after issue_date") in _errors(body)


def test_document_issued_before_birth_is_refused() -> None:
    body = example(TYPE)
    del _document(body)["mrz"]
    _document(body)["issue_date"] = "1990-01-01"
    assert _errors(body) == [(f"{DOC}/issue_date", "is before the holder's birth_date")]


def test_mrz_check_digit_failure_is_reported_on_line_two() -> None:
    body = example(TYPE)
    line2 = _document(body)["mrz"][1]
    _document(body)["mrz"][1] = line2[:9] + "0" + line2[10:]
    assert _errors(body) == [
        (f"{DOC}/mrz/1", "document number check digit does not match (expected 7)"),
        (f"{DOC}/mrz/1", "composite check digit does not match (expected 7)"),
    ]


def test_mrz_must_have_exactly_two_lines() -> None:
    body = example(TYPE)
    _document(body)["mrz"] = _document(body)["mrz"][:1]
    assert _errors(body) == [(f"{DOC}/mrz", "must have at least 2 items")]


def test_mrz_line_of_wrong_length_is_refused_at_that_line() -> None:
    body = example(TYPE)
    _document(body)["mrz"][0] += "<"
    assert _errors(body) == [
        (f"{DOC}/mrz/0", "must be an MRZ line: 44 characters from A-Z, 0-9 and <")
    ]


def test_mrz_document_number_must_agree_with_number() -> None:
    body = example(TYPE)
    _document(body)["number"] = "N07654322"
    assert _errors(body) == [
        (f"{DOC}/mrz/1", "MRZ document number (positions 1-9) does not agree with number")
    ]


def test_mrz_number_agrees_with_a_number_written_with_separators() -> None:
    body = example(TYPE)
    _document(body)["number"] = "N 0765 4321"
    accepted(TYPE, body)


def test_mrz_issuing_state_must_agree_with_issuing_state() -> None:
    body = example(TYPE)
    _document(body)["issuing_state"] = "KGZ"
    assert _errors(body) == [
        (f"{DOC}/mrz/0", "MRZ issuing state (positions 3-5) does not agree with issuing_state")
    ]


def test_mrz_expiry_must_agree_with_expiry_date() -> None:
    body = example(TYPE)
    _document(body)["expiry_date"] = "2029-06-18"
    assert _errors(body) == [
        (f"{DOC}/mrz/1", "MRZ expiry date (positions 22-27) does not agree with expiry_date")
    ]


def test_mrz_birth_date_must_agree_with_birth_date() -> None:
    body = example(TYPE)
    _person(body)["birth_date"] = "1991-03-15"
    errors = _errors(body)
    assert errors == [
        (
            f"{DOC}/mrz/1",
            "MRZ birth date (positions 14-19) does not agree with the holder's birth_date",
        )
    ]


def test_mrz_sex_must_agree_with_sex() -> None:
    body = example(TYPE)
    _person(body)["sex"] = "X"
    assert _errors(body) == [
        (f"{DOC}/mrz/1", "MRZ sex (position 21) does not agree with the holder's sex")
    ]


def test_mrz_nationality_must_be_among_citizenships() -> None:
    body = example(TYPE)
    _person(body)["citizenships"] = ["KGZ"]
    assert _errors(body) == [
        (
            f"{DOC}/mrz/1",
            "MRZ nationality (positions 11-13) is not among the holder's citizenships",
        )
    ]


def _german_mrz() -> list[str]:
    line1 = "P<D<<MUSTERMANN<<ERIKA" + "<" * 22
    number, birth, expiry = "C01X00T47", "640812", "310801"
    personal = "<" * 14
    line2 = (
        f"{number}{check_digit(number)}D<<{birth}{check_digit(birth)}F"
        f"{expiry}{check_digit(expiry)}{personal}<"
    )
    composite = check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    return [line1, f"{line2}{composite}"]


def test_mrz_code_d_stands_for_germany() -> None:
    body = example(TYPE)
    person = _person(body)
    person.update(
        names={"latin": {"surname": "MUSTERMANN", "given_names": "ERIKA"}},
        birth_date="1964-08-12",
        citizenships=["DEU"],
        identifiers=[],
        documents=[
            {
                "type": "passport",
                "number": "C01X00T47",
                "issuing_state": "DEU",
                "expiry_date": "2031-08-01",
                "mrz": _german_mrz(),
            }
        ],
    )
    assert accepted(TYPE, body).warnings == []


def test_mrz_name_differing_from_latin_name_is_only_a_warning() -> None:
    body = example(TYPE)
    _person(body)["names"]["latin"]["given_names"] = "AIGERIM ALI"
    warnings = accepted(TYPE, body).warnings
    assert [w.path for w in warnings] == [f"{DOC}/mrz/0"]


def test_document_number_with_cyrillic_series_is_accepted() -> None:
    body = example(TYPE)
    _person(body)["documents"].append(
        {"type": "birth-certificate", "number": "I-ЖС № 123456", "issuing_state": "KAZ"}
    )
    accepted(TYPE, body)


@pytest.mark.parametrize("number", ["", " N1", "n0765", "N1\n2"])
def test_malformed_document_number_is_refused(number: str) -> None:
    body = example(TYPE)
    del _document(body)["mrz"]
    _document(body)["number"] = number
    assert paths(TYPE, body) == [f"{DOC}/number"]


def test_united_nations_may_issue_a_document() -> None:
    body = example(TYPE)
    _person(body)["documents"].append(
        {"type": "other", "number": "UN12345", "issuing_state": "UNO"}
    )
    accepted(TYPE, body)
