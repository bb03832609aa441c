"""National identification numbers of persons: format and check-digit rules.

Pure functions over strings. An "error" makes a record invalid; a "caution" is a
finding the receiver should see but that must not refuse the record, because the
rule behind it is not confirmed by a public source (docs/records.md, "Identifiers",
lenient on purpose).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

Scheme = Literal["KZ-IIN", "KG-PIN", "UZ-PINFL", "TJ-ID", "OTHER"]

IIN_PATTERN: Final = r"^[0-9]{12}$"
KG_PIN_PATTERN: Final = r"^[0-9]{14}$"
PINFL_PATTERN: Final = r"^[0-9]{14}$"
# Free text: 1 to 64 printable characters, no leading or trailing space.
FREE_TEXT_PATTERN: Final = (
    r"^[^\x00-\x20\x7F-\x9F\u2028\u2029](?:[^\x00-\x1F\x7F-\x9F\u2028\u2029]{0,62}"
    r"[^\x00-\x20\x7F-\x9F\u2028\u2029])?$"
)
SCHEME_PATTERNS: Final[dict[Scheme, str]] = {
    "KZ-IIN": IIN_PATTERN,
    "KG-PIN": KG_PIN_PATTERN,
    "UZ-PINFL": PINFL_PATTERN,
    "TJ-ID": FREE_TEXT_PATTERN,
    "OTHER": FREE_TEXT_PATTERN,
}
_COMPILED: Final[dict[Scheme, re.Pattern[str]]] = {
    scheme: re.compile(pattern) for scheme, pattern in SCHEME_PATTERNS.items()
}
_FORMAT_MESSAGES: Final[dict[Scheme, str]] = {
    "KZ-IIN": "a KZ-IIN must be exactly 12 digits",
    "KG-PIN": "a KG-PIN must be exactly 14 digits",
    "UZ-PINFL": "a UZ-PINFL must be exactly 14 digits",
    "TJ-ID": "a TJ-ID must be 1 to 64 printable characters without leading or trailing space",
    "OTHER": "an OTHER identifier must be 1 to 64 printable characters without leading or trailing space",
}

_IIN_WEIGHTS_FIRST: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_IIN_WEIGHTS_SECOND: Final = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_PINFL_WEIGHTS: Final = (7, 3, 1) * 5


@dataclass(frozen=True)
class BirthFacts:
    """The birth date and sex that a national number encodes."""

    birth_date: date
    sex: Literal["M", "F"]


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False))


def iin_check_digit(first_eleven: str) -> int | None:
    """The KZ-IIN check digit for 11 digits, or None if no valid one exists.

    Sum of the digits times weights 1..11 mod 11; if that is 10, again with weights
    3..11, 1, 2; if that is 10 too, no IIN with these first digits is valid.
    """
    remainder = _weighted(first_eleven, _IIN_WEIGHTS_FIRST) % 11
    if remainder == 10:
        remainder = _weighted(first_eleven, _IIN_WEIGHTS_SECOND) % 11
    return None if remainder == 10 else remainder


def pinfl_check_digit(first_thirteen: str) -> int:
    """The UZ-PINFL check digit: digits times weights 7, 3, 1, ... mod 10 (unverified)."""
    return _weighted(first_thirteen, _PINFL_WEIGHTS) % 10


def _century_digit_facts(digit: int, yy: int, mm: int, dd: int) -> BirthFacts | None:
    """Birth facts from a century/sex digit (1-2: 1800s, 3-4: 1900s, 5-6: 2000s)."""
    if not 1 <= digit <= 6:
        return None
    year = 1800 + 100 * ((digit - 1) // 2) + yy
    try:
        born = date(year, mm, dd)
    except ValueError:
        return None
    return BirthFacts(born, "M" if digit % 2 == 1 else "F")


def iin_birth_facts(value: str) -> BirthFacts | None:
    """What a KZ-IIN encodes (YYMMDD, then the century/sex digit), if it encodes it.

    IINs issued since 2013 need not encode the birth date, so None is not an error.
    """
    if _COMPILED["KZ-IIN"].fullmatch(value) is None:
        return None
    return _century_digit_facts(int(value[6]), int(value[0:2]), int(value[2:4]), int(value[4:6]))


def pinfl_birth_facts(value: str) -> BirthFacts | None:
    """What a UZ-PINFL encodes: the century/sex digit, then DDMMYY."""
    if _COMPILED["UZ-PINFL"].fullmatch(value) is None:
        return None
    return _century_digit_facts(int(value[0]), int(value[5:7]), int(value[3:5]), int(value[1:3]))


def _iin_error(value: str) -> str | None:
    expected = iin_check_digit(value[:11])
    if expected is None:
        return "IIN is invalid: no check digit exists for its first 11 digits"
    if int(value[11]) != expected:
        return f"IIN check digit does not match (expected {expected})"
    return None


def _pinfl_error(value: str) -> str | None:
    if pinfl_birth_facts(value) is None:
        return "PINFL must start with a century/sex digit 1 to 6 followed by a birth date DDMMYY"
    if value[7:10] == "000":
        return "PINFL area code (digits 8 to 10) must not be 000"
    if value[10:13] == "000":
        return "PINFL serial number (digits 11 to 13) must not be 000"
    return None


def identifier_error(scheme: Scheme, value: str) -> str | None:
    """Why `value` is not a valid identifier of `scheme`, or None if it is."""
    if _COMPILED[scheme].fullmatch(value) is None:
        return _FORMAT_MESSAGES[scheme]
    if scheme == "KZ-IIN":
        return _iin_error(value)
    if scheme == "UZ-PINFL":
        return _pinfl_error(value)
    return None


def identifier_cautions(scheme: Scheme, value: str) -> list[str]:
    """Findings about a valid identifier that must not refuse it."""
    if scheme == "UZ-PINFL" and _COMPILED[scheme].fullmatch(value) is not None:
        expected = pinfl_check_digit(value[:13])
        if int(value[13]) != expected:
            return [
                f"PINFL check digit does not match (expected {expected}); the algorithm "
                "is not officially published, so the number is accepted"
            ]
    return []


def birth_facts(scheme: Scheme, value: str) -> BirthFacts | None:
    """The birth facts an identifier of `scheme` encodes, if that scheme encodes any."""
    if scheme == "KZ-IIN":
        return iin_birth_facts(value)
    if scheme == "UZ-PINFL":
        return pinfl_birth_facts(value)
    return None
