"""KZ-IIN, KG-PIN, UZ-PINFL and free-text identifiers: known answers and negatives."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.records.identifiers import (
    BirthFacts,
    Scheme,
    identifier_cautions,
    identifier_error,
    iin_birth_facts,
    iin_check_digit,
    pinfl_birth_facts,
    pinfl_check_digit,
)

_FULLWIDTH_IIN = "".join(chr(0xFF10 + int(d)) for d in "791028302728")
_FIRST = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_SECOND = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def _first_pass(first_eleven: str) -> int:
    return sum(int(d) * w for d, w in zip(first_eleven, _FIRST, strict=True)) % 11


def _reference_iin_check(first_eleven: str) -> int | None:
    """An independent statement of the docs/records.md algorithm."""
    first = _first_pass(first_eleven)
    if first != 10:
        return first
    second = sum(int(d) * w for d, w in zip(first_eleven, _SECOND, strict=True)) % 11
    return None if second == 10 else second


@pytest.mark.parametrize("iin", ["061211600012", "791028302728"])
def test_iin_known_valid_numbers_pass(iin: str) -> None:
    assert identifier_error("KZ-IIN", iin) is None


def test_iin_known_invalid_number_names_the_expected_check_digit() -> None:
    assert identifier_error("KZ-IIN", "791028302729") == (
        "IIN check digit does not match (expected 8)"
    )


def test_iin_check_digit_uses_second_weights_when_first_gives_ten() -> None:
    assert iin_check_digit("90010140040") == 4
    assert identifier_error("KZ-IIN", "900101400404") is None


def test_iin_whose_second_pass_also_gives_ten_is_invalid() -> None:
    assert iin_check_digit("90010140043") is None
    assert identifier_error("KZ-IIN", "900101400430") == (
        "IIN is invalid: no check digit exists for its first 11 digits"
    )


def test_iin_digit_eleven_has_weight_eleven_so_the_first_pass_ignores_it() -> None:
    # 791028302728 uses the first pass; changing digit 11 leaves its sum mod 11 alone.
    assert identifier_error("KZ-IIN", "791028302738") is None


@pytest.mark.parametrize("value", ["79102830272", "7910283027280", "79102830272A", _FULLWIDTH_IIN])
def test_iin_of_wrong_shape_is_refused(value: str) -> None:
    assert identifier_error("KZ-IIN", value) == "a KZ-IIN must be exactly 12 digits"


def test_iin_encodes_birth_date_and_sex() -> None:
    assert iin_birth_facts("061211600012") == BirthFacts(date(2006, 12, 11), "F")
    assert iin_birth_facts("791028302728") == BirthFacts(date(1979, 10, 28), "M")


@pytest.mark.parametrize("iin", ["791028002728", "791328302728", "791028702728"])
def test_iin_that_encodes_no_birth_date_gives_no_facts(iin: str) -> None:
    assert iin_birth_facts(iin) is None


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_generated_iin_with_its_check_digit_passes(first_eleven: str) -> None:
    check = _reference_iin_check(first_eleven)
    if check is None:
        assert identifier_error("KZ-IIN", first_eleven + "0") is not None
    else:
        assert identifier_error("KZ-IIN", first_eleven + str(check)) is None


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(1, 9))
def test_changing_the_check_digit_of_a_valid_iin_fails(first_eleven: str, delta: int) -> None:
    check = _reference_iin_check(first_eleven)
    if check is None:
        return
    changed = first_eleven + str((check + delta) % 10)
    assert identifier_error("KZ-IIN", changed) is not None


@given(
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.integers(0, 9),
    st.integers(1, 9),
)
def test_changing_one_of_the_first_ten_digits_fails_when_both_numbers_use_the_first_weights(
    first_eleven: str, position: int, delta: int
) -> None:
    check = _reference_iin_check(first_eleven)
    if check is None:
        return
    digits = list(first_eleven)
    digits[position] = str((int(digits[position]) + delta) % 10)
    changed = "".join(digits)
    still_valid = _reference_iin_check(changed) == check
    assert (identifier_error("KZ-IIN", changed + str(check)) is None) == still_valid
    if _first_pass(first_eleven) != 10 and _first_pass(changed) != 10:
        assert not still_valid


@pytest.mark.parametrize("value", ["12345678901234", "00000000000000"])
def test_kg_pin_of_fourteen_digits_passes(value: str) -> None:
    assert identifier_error("KG-PIN", value) is None


@pytest.mark.parametrize("value", ["1234567890123", "123456789012345", "1234567890123A"])
def test_kg_pin_of_other_shape_is_refused(value: str) -> None:
    assert identifier_error("KG-PIN", value) == "a KG-PIN must be exactly 14 digits"


def test_pinfl_with_valid_structure_and_check_digit_passes() -> None:
    assert identifier_error("UZ-PINFL", "32207950260457") is None
    assert identifier_cautions("UZ-PINFL", "32207950260457") == []


def test_pinfl_check_digit_uses_weights_seven_three_one() -> None:
    assert pinfl_check_digit("3220795026045") == 7


def test_pinfl_check_digit_mismatch_is_only_a_caution() -> None:
    assert identifier_error("UZ-PINFL", "32207950260458") is None
    assert identifier_cautions("UZ-PINFL", "32207950260458") == [
        "PINFL check digit does not match (expected 7); the algorithm is not officially "
        "published, so the number is accepted"
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("72207950260457", "century/sex digit"),
        ("33102950260457", "birth date DDMMYY"),
        ("32213950260457", "birth date DDMMYY"),
        ("32207950000457", "area code"),
        ("32207950260007", "serial number"),
        ("3220795026045", "exactly 14 digits"),
    ],
)
def test_pinfl_structure_faults_are_errors(value: str, fragment: str) -> None:
    error = identifier_error("UZ-PINFL", value)
    assert error is not None
    assert fragment in error


def test_pinfl_encodes_birth_date_and_sex() -> None:
    assert pinfl_birth_facts("32207950260457") == BirthFacts(date(1995, 7, 22), "M")
    assert pinfl_birth_facts("62207050260457") == BirthFacts(date(2005, 7, 22), "F")


@pytest.mark.parametrize("scheme", ["TJ-ID", "OTHER"])
@pytest.mark.parametrize("value", ["A0312885", "№ 12-345/Б", "x" * 64])
def test_free_text_identifiers_pass(scheme: Scheme, value: str) -> None:
    assert identifier_error(scheme, value) is None


@pytest.mark.parametrize("scheme", ["TJ-ID", "OTHER"])
@pytest.mark.parametrize("value", ["", " A1", "A1 ", "A\n1", "A\x001", "x" * 65])
def test_free_text_identifiers_that_are_empty_padded_unprintable_or_long_fail(
    scheme: Scheme, value: str
) -> None:
    assert identifier_error(scheme, value) is not None
