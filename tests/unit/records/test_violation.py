"""migration.violation-notice: date order, measures, entry ban."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.records.bodies import accepted, example, refusal

TYPE = "migration.violation-notice"


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(TYPE, body)]


def test_example_notice_is_valid() -> None:
    accepted(TYPE, example(TYPE))


def test_detection_before_entry_is_refused() -> None:
    body = example(TYPE)
    body["violation"]["entry_date"] = "2025-02-11"
    body["violation"]["legal_stay_until"] = "2025-02-01"
    assert _errors(body) == [("/body/violation/detected_at", "must not be before entry_date")]


def test_detection_on_the_day_of_entry_is_accepted() -> None:
    body = example(TYPE)
    body["violation"].update(kind="illegal-stay", entry_date="2025-02-10")
    del body["violation"]["legal_stay_until"]
    accepted(TYPE, body)


def test_entry_before_birth_is_refused() -> None:
    body = example(TYPE)
    body["violation"]["entry_date"] = "1995-07-21"
    assert _errors(body) == [
        ("/body/violation/entry_date", "must not be before the person's birth_date")
    ]


def test_detection_before_birth_is_refused_when_entry_is_unknown() -> None:
    body = example(TYPE)
    body["violation"].update(kind="illegal-stay", detected_at="1995-07-01")
    del body["violation"]["entry_date"]
    del body["violation"]["legal_stay_until"]
    assert _errors(body) == [
        ("/body/violation/detected_at", "must not be before the person's birth_date")
    ]


@pytest.mark.parametrize("kind", ["overstay", "illegal-stay"])
@pytest.mark.parametrize("until", ["2025-02-10", "2025-03-01"])
def test_stay_lawful_on_the_day_of_detection_is_refused(kind: str, until: str) -> None:
    body = example(TYPE)
    body["violation"].update(kind=kind, legal_stay_until=until)
    assert _errors(body) == [
        (
            "/body/violation/legal_stay_until",
            "must be before detected_at: the stay was still lawful when it was detected",
        )
    ]


def test_illegal_work_during_a_lawful_stay_is_accepted() -> None:
    body = example(TYPE)
    body["violation"].update(kind="illegal-work", legal_stay_until="2025-03-01")
    accepted(TYPE, body)


def test_overstay_needs_legal_stay_until() -> None:
    body = example(TYPE)
    del body["violation"]["legal_stay_until"]
    assert _errors(body) == [("/body/violation/legal_stay_until", "is required for an overstay")]


def test_grounds_must_not_be_empty() -> None:
    body = example(TYPE)
    body["violation"]["grounds"] = []
    assert _errors(body) == [("/body/violation/grounds", "must have at least 1 item")]


def test_execution_before_decision_is_refused() -> None:
    body = example(TYPE)
    body["measures"][1]["execution_date"] = "2025-02-11"
    assert _errors(body) == [
        ("/body/measures/1/execution_date", "must not be before decision_date")
    ]


def test_execution_on_the_day_of_decision_is_accepted() -> None:
    body = example(TYPE)
    body["measures"][1]["execution_date"] = "2025-02-12"
    accepted(TYPE, body)


def test_fine_needs_an_amount() -> None:
    body = example(TYPE)
    del body["measures"][0]["fine"]
    assert _errors(body) == [("/body/measures/0/fine", "is required for a fine")]


def test_expulsion_cannot_carry_a_fine() -> None:
    body = example(TYPE)
    body["measures"][1]["fine"] = {"amount": "1", "currency": "KZT"}
    assert _errors(body) == [
        ("/body/measures/1/fine", "is only allowed for a fine, not for expulsion")
    ]


def test_fine_cannot_have_a_border_crossing_point() -> None:
    body = example(TYPE)
    body["measures"][0]["border_crossing_point"] = {"name": "Zhibek Zholy", "country": "KAZ"}
    assert _errors(body) == [
        ("/body/measures/0/border_crossing_point", "is not allowed for a fine")
    ]


@pytest.mark.parametrize("amount", ["98300.5", "0", "0.01"])
def test_decimal_amounts_are_accepted(amount: str) -> None:
    body = example(TYPE)
    body["measures"][0]["fine"]["amount"] = amount
    accepted(TYPE, body)


@pytest.mark.parametrize("amount", ["-1", "01", "1.001", "1e3", ""])
def test_malformed_amounts_are_refused(amount: str) -> None:
    body = example(TYPE)
    body["measures"][0]["fine"]["amount"] = amount
    assert _errors(body) == [
        ("/body/measures/0/fine/amount", "must be a decimal amount such as 14766 or 14766.50")
    ]


def test_amount_as_a_json_number_is_refused() -> None:
    body = example(TYPE)
    body["measures"][0]["fine"]["amount"] = 98300
    assert _errors(body) == [("/body/measures/0/fine/amount", "must be a string")]


@pytest.mark.parametrize("until", ["2025-02-20", "2025-02-19"])
def test_ban_ending_on_or_before_its_start_is_refused(until: str) -> None:
    body = example(TYPE)
    body["entry_ban"]["until"] = until
    assert _errors(body) == [("/body/entry_ban/until", "must be after from")]


def test_indefinite_ban_is_accepted() -> None:
    body = example(TYPE)
    body["entry_ban"] = {"from": "2025-02-20", "indefinite": True}
    accepted(TYPE, body)


def test_ban_with_neither_end_nor_indefinite_is_refused() -> None:
    body = example(TYPE)
    body["entry_ban"] = {"from": "2025-02-20"}
    assert _errors(body) == [("/body/entry_ban/until", "is required unless indefinite is true")]


def test_ban_with_both_end_and_indefinite_is_refused() -> None:
    body = example(TYPE)
    body["entry_ban"]["indefinite"] = True
    assert _errors(body) == [("/body/entry_ban/until", "must be absent when the ban is indefinite")]


def test_ban_start_is_read_from_the_member_named_from() -> None:
    model = accepted(TYPE, example(TYPE)).model
    assert model.model_dump(mode="json")["entry_ban"]["from"] == "2025-02-20"


def test_ban_start_given_as_from_underscore_is_refused() -> None:
    body = example(TYPE)
    body["entry_ban"] = {"from_": "2025-02-20", "until": "2030-02-19"}
    assert set(_errors(body)) == {
        ("/body/entry_ban/from", "is required"),
        ("/body/entry_ban/from_", "is not a member of this object: remove it"),
    }


def test_unknown_violation_kind_is_refused() -> None:
    body = example(TYPE)
    body["violation"]["kind"] = "smuggling"
    assert [p for p, _ in _errors(body)] == ["/body/violation/kind"]
