"""ICAO Doc 9303 TD3 machine readable zone (passports): parsing and check digits.

Line 2 positions (0-based): document number 0-8 (check 9), nationality 10-12,
birth date YYMMDD 13-18 (check 19), sex 20, expiry YYMMDD 21-26 (check 27),
personal number 28-41 (check 42), composite check 43 over 0-9, 13-19 and 21-42.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

LINE_PATTERN: Final = r"^[A-Z0-9<]{44}$"
_LINE_RE: Final = re.compile(r"[A-Z0-9<]{44}")
_NAME_RE: Final = re.compile(r"[A-Z<]{39}")
_STATE_RE: Final = re.compile(r"[A-Z][A-Z<]{2}")
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
SEX_CODES: Final[dict[str, str]] = {"M": "M", "F": "F", "<": "X"}


def char_value(char: str) -> int:
    """Digits are themselves, A-Z are 10-35, the filler < is 0."""
    if char == "<":
        return 0
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"{char!r} is not an MRZ character")


_VALUES: Final[dict[str, int]] = {
    "<": 0,
    **{chr(ord("0") + n): n for n in range(10)},
    **{chr(ord("A") + n): n + 10 for n in range(26)},
}


def check_digit(field: str) -> int:
    """ICAO 9303 check digit: values times weights 7, 3, 1 repeating, mod 10."""
    try:
        values = [_VALUES[c] for c in field]
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not an MRZ character") from None
    return (7 * sum(values[0::3]) + 3 * sum(values[1::3]) + sum(values[2::3])) % 10


@dataclass(frozen=True)
class Td3:
    """The fields of a TD3 MRZ, as printed (fillers kept)."""

    line1: str
    line2: str

    @property
    def document_code(self) -> str:
        return self.line1[0:2]

    @property
    def issuing_state(self) -> str:
        return self.line1[2:5]

    @property
    def name_field(self) -> str:
        return self.line1[5:44]

    @property
    def document_number(self) -> str:
        return self.line2[0:9]

    @property
    def nationality(self) -> str:
        return self.line2[10:13]

    @property
    def birth_date(self) -> str:
        return self.line2[13:19]

    @property
    def sex(self) -> str:
        return self.line2[20]

    @property
    def expiry_date(self) -> str:
        return self.line2[21:27]

    @property
    def personal_number(self) -> str:
        return self.line2[28:42]

    def names(self) -> tuple[str, str]:
        """(surname, given names) with fillers turned into single spaces."""
        surname, _, given = self.name_field.rstrip("<").partition("<<")
        return _words(surname), _words(given)

    def name_truncated(self) -> bool:
        """True when the name field is full, so the name may have been cut short."""
        return not self.name_field.endswith("<")


def _words(field: str) -> str:
    return " ".join(part for part in field.split("<") if part)


@dataclass(frozen=True)
class MrzFault:
    """A defect in an MRZ: which line (0 or 1) and what is wrong."""

    line: int
    message: str


def _yymmdd_fault(field: str, *, unknown_allowed: bool) -> str | None:
    """Why a YYMMDD field is not a date (century unknown, so 29 February passes)."""
    yy, mm, dd = field[0:2], field[2:4], field[4:6]
    if not all(p.isdigit() or (unknown_allowed and p == "<<") for p in (yy, mm, dd)):
        return "is not YYMMDD"
    if mm.isdigit() and not 1 <= int(mm) <= 12:
        return "has no valid month"
    max_day = _DAYS_IN_MONTH[int(mm) - 1] if mm.isdigit() else 31
    if dd.isdigit() and not 1 <= int(dd) <= max_day:
        return "has no valid day"
    return None


def _check(field: str, printed: str, name: str, *, fillers_allowed: bool = False) -> str | None:
    if fillers_allowed and printed == "<" and set(field) == {"<"}:
        return None
    expected = check_digit(field)
    if printed != str(expected):
        return f"{name} check digit does not match (expected {expected})"
    return None


def _line1_faults(line1: str) -> list[MrzFault]:
    faults = []
    if line1[0] != "P":
        faults.append(MrzFault(0, "a TD3 MRZ must start with P (passport)"))
    if _STATE_RE.fullmatch(line1[2:5]) is None:
        faults.append(MrzFault(0, "issuing state (positions 3-5) must be letters"))
    if _NAME_RE.fullmatch(line1[5:44]) is None or line1[5] == "<":
        faults.append(MrzFault(0, "name field must be letters and fillers, surname first"))
    return faults


def _line2_format_faults(td3: Td3) -> list[str]:
    faults = []
    if _STATE_RE.fullmatch(td3.nationality) is None:
        faults.append("nationality (positions 11-13) must be letters")
    birth = _yymmdd_fault(td3.birth_date, unknown_allowed=True)
    if birth is not None:
        faults.append(f"birth date (positions 14-19) {birth}")
    if td3.sex not in SEX_CODES:
        faults.append("sex (position 21) must be M, F or <")
    expiry = _yymmdd_fault(td3.expiry_date, unknown_allowed=False)
    if expiry is not None:
        faults.append(f"expiry date (positions 22-27) {expiry}")
    return faults


def _check_digit_faults(line2: str) -> list[str]:
    composite_field = line2[0:10] + line2[13:20] + line2[21:43]
    results = [
        _check(line2[0:9], line2[9], "document number"),
        _check(line2[13:19], line2[19], "birth date"),
        _check(line2[21:27], line2[27], "expiry date"),
        _check(line2[28:42], line2[42], "personal number", fillers_allowed=True),
        _check(composite_field, line2[43], "composite"),
    ]
    return [r for r in results if r is not None]


def td3_faults(line1: str, line2: str) -> list[MrzFault]:
    """Every defect of a TD3 MRZ: character set, field formats and all check digits."""
    faults = []
    for index, line in enumerate((line1, line2)):
        if _LINE_RE.fullmatch(line) is None:
            faults.append(MrzFault(index, "must be 44 characters from A-Z, 0-9 and <"))
    if faults:
        return faults
    faults.extend(_line1_faults(line1))
    td3 = Td3(line1, line2)
    faults.extend(MrzFault(1, m) for m in _line2_format_faults(td3))
    faults.extend(MrzFault(1, m) for m in _check_digit_faults(line2))
    return faults


def date_agrees(field: str, value: date) -> bool:
    """Whether a YYMMDD field agrees with a date; unknown (<<) parts agree with anything."""
    printed = f"{value.year % 100:02d}{value.month:02d}{value.day:02d}"
    return all(f == "<" or f == p for f, p in zip(field, printed, strict=True))


def sex_agrees(field: str, sex: str) -> bool:
    """Whether the MRZ sex (M, F, <) agrees with a record's sex (M, F, X)."""
    return SEX_CODES.get(field) == sex
