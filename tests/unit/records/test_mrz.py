"""TD3 MRZ: ICAO Doc 9303 specimen, check digits, field formats."""

from __future__ import annotations

from datetime import date

import pytest

from service.records.mrz import (
    Td3,
    char_value,
    check_digit,
    date_agrees,
    sex_agrees,
    td3_faults,
)

# ICAO Doc 9303 Part 4 specimen: Anna Maria Eriksson, Utopia.
SPECIMEN_1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
SPECIMEN_2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def _with(line: str, position: int, char: str) -> str:
    return line[:position] + char + line[position + 1 :]


def test_icao_specimen_passes_every_check() -> None:
    assert td3_faults(SPECIMEN_1, SPECIMEN_2) == []


def test_icao_specimen_fields_are_read_at_their_positions() -> None:
    td3 = Td3(SPECIMEN_1, SPECIMEN_2)
    assert td3.issuing_state == "UTO"
    assert td3.document_number == "L898902C3"
    assert td3.nationality == "UTO"
    assert td3.birth_date == "740812"
    assert td3.sex == "F"
    assert td3.expiry_date == "120415"
    assert td3.personal_number == "ZE184226B<<<<<"
    assert td3.names() == ("ERIKSSON", "ANNA MARIA")
    assert not td3.name_truncated()


@pytest.mark.parametrize(
    ("field", "expected"),
    [("L898902C3", 6), ("740812", 2), ("120415", 9), ("ZE184226B<<<<<", 1), ("<<<", 0)],
)
def test_check_digit_known_answers(field: str, expected: int) -> None:
    assert check_digit(field) == expected


def test_character_values_follow_icao() -> None:
    assert [char_value(c) for c in "09AZ<"] == [0, 9, 10, 35, 0]


def test_character_outside_the_mrz_alphabet_has_no_value() -> None:
    with pytest.raises(ValueError, match="not an MRZ character"):
        char_value("a")


@pytest.mark.parametrize(
    ("position", "name", "expected"),
    [
        (9, "document number", 6),
        (19, "birth date", 2),
        (27, "expiry date", 9),
        (42, "personal number", 1),
        (43, "composite", 0),
    ],
)
def test_each_flipped_check_digit_is_reported(position: int, name: str, expected: int) -> None:
    flipped = _with(SPECIMEN_2, position, str((int(SPECIMEN_2[position]) + 1) % 10))
    messages = [f.message for f in td3_faults(SPECIMEN_1, flipped)]
    assert f"{name} check digit does not match (expected {expected})" in messages


@pytest.mark.parametrize(
    ("position", "names"),
    [
        (1, {"document number", "composite"}),
        (15, {"birth date", "composite"}),
        (23, {"expiry date", "composite"}),
        (30, {"personal number", "composite"}),
    ],
)
def test_a_changed_data_digit_fails_its_own_and_the_composite_check(
    position: int, names: set[str]
) -> None:
    original = SPECIMEN_2[position]
    changed = _with(SPECIMEN_2, position, "1" if original != "1" else "2")
    messages = {f.message.split(" check digit")[0] for f in td3_faults(SPECIMEN_1, changed)}
    assert names <= messages


@pytest.mark.parametrize(
    "line2",
    [SPECIMEN_2[:-1], SPECIMEN_2 + "<", SPECIMEN_2.lower(), SPECIMEN_2.replace("<", " ")],
)
def test_line_of_wrong_length_or_alphabet_is_refused(line2: str) -> None:
    assert [(f.line, f.message) for f in td3_faults(SPECIMEN_1, line2)] == [
        (1, "must be 44 characters from A-Z, 0-9 and <")
    ]


def test_td3_must_start_with_p() -> None:
    faults = td3_faults(_with(SPECIMEN_1, 0, "V"), SPECIMEN_2)
    assert [(f.line, f.message) for f in faults] == [(0, "a TD3 MRZ must start with P (passport)")]


def test_digits_in_the_name_field_are_refused() -> None:
    faults = td3_faults(_with(SPECIMEN_1, 7, "1"), SPECIMEN_2)
    assert [f.line for f in faults] == [0]


def _recomputed(line2: str) -> str:
    """line 2 with every check digit recomputed."""
    parts = [line2[0:9], line2[10:19], line2[20:27], line2[28:42]]
    doc = parts[0] + str(check_digit(parts[0]))
    birth = line2[13:19] + str(check_digit(line2[13:19]))
    expiry = line2[21:27] + str(check_digit(line2[21:27]))
    personal = parts[3] + str(check_digit(parts[3]))
    composite = str(check_digit(doc + birth + expiry + personal))
    return doc + line2[10:13] + birth + line2[20] + expiry + personal + composite


def test_recomputed_specimen_is_unchanged() -> None:
    assert _recomputed(SPECIMEN_2) == SPECIMEN_2


@pytest.mark.parametrize(
    ("birth", "message"),
    [
        ("741308", "birth date (positions 14-19) has no valid month"),
        ("740230", "birth date (positions 14-19) has no valid day"),
        ("74AB12", "birth date (positions 14-19) is not YYMMDD"),
    ],
)
def test_impossible_birth_date_is_refused(birth: str, message: str) -> None:
    line2 = _recomputed(SPECIMEN_2[:13] + birth + SPECIMEN_2[19:])
    assert message in [f.message for f in td3_faults(SPECIMEN_1, line2)]


def test_unknown_birth_day_and_month_as_fillers_are_accepted() -> None:
    line2 = _recomputed(SPECIMEN_2[:13] + "74<<<<" + SPECIMEN_2[19:])
    assert td3_faults(SPECIMEN_1, line2) == []


def test_expiry_date_must_be_known() -> None:
    line2 = _recomputed(SPECIMEN_2[:21] + "12<<<<" + SPECIMEN_2[27:])
    assert "expiry date (positions 22-27) is not YYMMDD" in [
        f.message for f in td3_faults(SPECIMEN_1, line2)
    ]


def test_sex_other_than_m_f_or_filler_is_refused() -> None:
    line2 = _recomputed(_with(SPECIMEN_2, 20, "X"))
    assert "sex (position 21) must be M, F or <" in [
        f.message for f in td3_faults(SPECIMEN_1, line2)
    ]


def test_empty_personal_number_may_have_a_filler_check_digit() -> None:
    line2 = SPECIMEN_2[:28] + "<" * 15
    line2 = line2[:43] + str(check_digit(line2[0:10] + line2[13:20] + line2[21:43]))
    assert td3_faults(SPECIMEN_1, line2) == []


def test_date_agreement_compares_yymmdd_and_skips_unknown_parts() -> None:
    assert date_agrees("740812", date(1974, 8, 12))
    assert not date_agrees("740812", date(1974, 8, 13))
    assert date_agrees("74<<<<", date(1974, 1, 1))


def test_sex_agreement_maps_filler_to_unspecified() -> None:
    assert sex_agrees("F", "F")
    assert sex_agrees("<", "X")
    assert not sex_agrees("M", "F")


def test_full_name_field_counts_as_possibly_truncated() -> None:
    line1 = "P<UTO" + "A" * 20 + "<<" + "B" * 17
    assert Td3(line1, SPECIMEN_2).name_truncated()
