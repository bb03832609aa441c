"""Constrained field types shared by the record models.

Each pattern is written so that pydantic (Rust regex), Python `re` and ECMA-262
(the JSON Schema dialect) read it the same way: ASCII classes only, no look-around,
code points as \\uXXXX escapes. `PATTERN_HINTS` turns a pattern into a sentence a
person can act on when a value does not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from datetime import date
from typing import Annotated, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from service.records import countries, mrz
from service.records.failures import rule_error

PATTERN_HINTS: dict[str, str] = {}

T = TypeVar("T", bound=Hashable)


class RecordModel(BaseModel):
    """Base of every body model: unknown members refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _pattern(pattern: str, hint: str) -> str:
    PATTERN_HINTS[pattern] = hint
    return pattern


# --- dates -----------------------------------------------------------------------

DATE_PATTERN: Final = _pattern(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "must be a date YYYY-MM-DD")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(value: object) -> date:
    """A calendar date from exactly `YYYY-MM-DD`; nothing else is accepted."""
    if not isinstance(value, str) or _DATE_RE.fullmatch(value) is None:
        raise PydanticCustomError("date_format", "must be a date written as a string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_value", "is not a calendar date") from None


IsoDate = Annotated[
    date,
    PlainValidator(parse_iso_date),
    PlainSerializer(date.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]

# --- codes -----------------------------------------------------------------------


def _code_check(codes: frozenset[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in codes:
            raise rule_error(f"must be {what}")
        return value

    return check


Country = Annotated[
    str,
    AfterValidator(_code_check(countries.ISO_ALPHA3, "an ISO 3166-1 alpha-3 country code")),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(countries.ISO_ALPHA3),
            "description": "ISO 3166-1 alpha-3 country code",
        }
    ),
]
Nationality = Annotated[
    str,
    AfterValidator(
        _code_check(
            countries.NATIONALITY_CODES,
            "an ISO 3166-1 alpha-3 code or one of XXA, XXB, XXC, XXX",
        )
    ),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(countries.NATIONALITY_CODES),
            "description": "ISO 3166-1 alpha-3 code, or ICAO XXA (stateless), XXB (refugee), "
            "XXC (other refugee), XXX (unspecified)",
        }
    ),
]
Issuer = Annotated[
    str,
    AfterValidator(
        _code_check(
            countries.ISSUER_CODES,
            "an ISO 3166-1 alpha-3 code or an ICAO Doc 9303 organisation code",
        )
    ),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(countries.ISSUER_CODES),
            "description": "issuing state (ISO 3166-1 alpha-3) or ICAO Doc 9303 organisation code",
        }
    ),
]

# --- text ------------------------------------------------------------------------

_EDGE: Final = r"[^\x00-\x20\x7F-\x9F\u2028\u2029]"
_LINE: Final = r"[^\x00-\x1F\x7F-\x9F\u2028\u2029]"
_PARAGRAPH: Final = r"[^\x00-\x08\x0B-\x1F\x7F-\x9F\u2028\u2029]"
SINGLE_LINE_PATTERN: Final = _pattern(
    rf"^{_EDGE}(?:{_LINE}*{_EDGE})?$",
    "must be printable text on one line, without leading or trailing spaces",
)
MULTI_LINE_PATTERN: Final = _pattern(
    rf"^{_EDGE}(?:{_PARAGRAPH}*{_EDGE})?$",
    "must be printable text (tabs and line feeds allowed), without leading or trailing white space",
)


ShortText = Annotated[str, StringConstraints(pattern=SINGLE_LINE_PATTERN, max_length=200)]
Reference = Annotated[str, StringConstraints(pattern=SINGLE_LINE_PATTERN, max_length=64)]
LongText = Annotated[str, StringConstraints(pattern=MULTI_LINE_PATTERN, max_length=2000)]

LATIN_NAME_PATTERN: Final = _pattern(
    r"^[A-Z]+(?: [A-Z]+)*$",
    "must be written as in the MRZ: capital letters A-Z, name parts separated by one space",
)
LatinNamePart = Annotated[str, StringConstraints(pattern=LATIN_NAME_PATTERN, max_length=39)]

_CYR: Final = r"[\u0400-\u052F]"
CYRILLIC_NAME_PATTERN: Final = _pattern(
    rf"^{_CYR}+(?:[ '\u2019\u02BC-]{_CYR}+)*$",
    "must be Cyrillic letters, name parts separated by one space, hyphen or apostrophe",
)
CyrillicNamePart = Annotated[str, StringConstraints(pattern=CYRILLIC_NAME_PATTERN, max_length=100)]

_DOC_CHAR: Final = r"[0-9A-Z\u0400-\u04FF]"
DOCUMENT_NUMBER_PATTERN: Final = _pattern(
    rf"^{_DOC_CHAR}(?:[0-9A-Z\u0400-\u04FF \u2116/.-]*{_DOC_CHAR})?$",
    "must be a document number: digits, capital Latin letters and Cyrillic letters, "
    "optionally separated by spaces, hyphens, slashes, dots or the numero sign",
)
DocumentNumber = Annotated[str, StringConstraints(pattern=DOCUMENT_NUMBER_PATTERN, max_length=32)]

MRZ_LINE_PATTERN: Final = _pattern(
    mrz.LINE_PATTERN, "must be an MRZ line: 44 characters from A-Z, 0-9 and <"
)
MrzLine = Annotated[str, StringConstraints(pattern=MRZ_LINE_PATTERN)]

Sex = Literal["M", "F", "X"]

# --- lists -----------------------------------------------------------------------


def unique(items: list[T]) -> list[T]:
    """After-validator of a list whose items must be distinct (`uniqueItems`)."""
    seen: set[T] = set()
    for item in items:
        if item in seen:
            raise rule_error(f"must not list {item} twice")
        seen.add(item)
    return items
