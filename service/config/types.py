"""Value types of the configuration file: ids, dates, paths and URLs, with clear errors.

Each type is a pydantic `Annotated` type whose validator names what was expected
("'UZ-MIA' is not a party id such as KZ:MIA"), so that the loader can report the
problem next to the line it comes from.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from service.exchange.periods import CATEGORY_NAMES
from service.partners.agreements import EXCHANGE_TYPES
from service.privacy.sealing import KEK_ID_RE
from service.protocol.envelope import AGREEMENT_RE, KID_RE, PARTY_RE, PURPOSE_RE

# The roles a bearer token can hold (the local API's, the auditors' and the
# data-protection officer's).
Role = Literal["auditor", "operator", "client", "privacy"]
ROLES: tuple[Role, ...] = ("auditor", "operator", "client", "privacy")

PARTY_PATTERN = PARTY_RE
KID_PATTERN = KID_RE
_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "party": (re.compile(PARTY_PATTERN), "a party id such as KZ:MIA"),
    "kid": (re.compile(KID_PATTERN), "a key id such as KZ:MIA#2026-01"),
    "country": (re.compile(r"^[A-Z]{2}$"), "an ISO 3166-1 alpha-2 country code such as KZ"),
    "ident": (
        re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"),
        "an id of lowercase letters, digits, '.', '_' and '-'",
    ),
    # The envelope's own rules, so that the file names only what the wire accepts.
    "agreement": (re.compile(AGREEMENT_RE), "an agreement id such as kz-uz-2019"),
    "purpose": (re.compile(PURPOSE_RE), "a purpose code such as identity-verification"),
    "field": (
        re.compile(r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$"),
        'a dotted path into the body such as person.names, or "*"',
    ),
    "token_name": (
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"),
        "a token holder's name such as auditor-kz-1",
    ),
    "sha256": (re.compile(r"^[0-9a-f]{64}$"), "a SHA-256 digest in 64 lowercase hex digits"),
    "kek": (re.compile(f"^{KEK_ID_RE}$"), "a KEK id such as 2026-12 (letters, digits, . _ -)"),
}


def _pattern(kind: str) -> AfterValidator:
    regex, what = _PATTERNS[kind]

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


def _message_type(value: str) -> str:
    if value not in EXCHANGE_TYPES:
        raise ValueError(f"unknown message type {value!r} (known: {', '.join(EXCHANGE_TYPES)})")
    return value


def _retention_category(value: str) -> str:
    if value not in CATEGORY_NAMES:
        raise ValueError(f"unknown category {value!r} (known: {', '.join(CATEGORY_NAMES)})")
    return value


def _iso_date(value: object) -> object:
    if isinstance(value, datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid date") from None
    raise ValueError("must be a date (YYYY-MM-DD)")


def _file_path(value: object) -> object:
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return Path(value)
    raise ValueError("must be a file path")


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http or https URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{value!r}: give a base URL without credentials, query or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


def _wildcard_alone(values: tuple[str, ...]) -> tuple[str, ...]:
    if "*" in values and len(values) > 1:
        raise ValueError('"*" (the whole body) must be the only entry')
    return values


# Lists in the file become tuples (the models are frozen); their items stay strict.
Lax = Field(strict=False)
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Party = Annotated[str, _pattern("party")]
Kid = Annotated[str, _pattern("kid")]
KekId = Annotated[str, _pattern("kek")]
Country = Annotated[str, _pattern("country")]
Ident = Annotated[str, _pattern("ident")]
AgreementId = Annotated[str, _pattern("agreement")]
Purpose = Annotated[str, _pattern("purpose")]
MessageType = Annotated[str, AfterValidator(_message_type)]
RetentionCategory = Annotated[str, AfterValidator(_retention_category)]
FieldPath = Annotated[str, _pattern("field")]
TokenName = Annotated[str, _pattern("token_name")]
Sha256Hex = Annotated[str, _pattern("sha256")]
Alg = Literal["Ed25519", "EdDSA", "ES256"]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
FilePath = Annotated[Path, BeforeValidator(_file_path)]
Endpoint = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_endpoint)]
Seconds = Annotated[float, Field(gt=0, le=86400 * 365)]
# A C2SP signed-note key name: no whitespace and no '+' (a checkpoint origin, a cosigner).
NoteKeyName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\s+]+$")]

Kids = Annotated[tuple[Kid, ...], Lax, AfterValidator(_unique)]
Countries = Annotated[tuple[Country, ...], Lax, Field(min_length=2), AfterValidator(_unique)]
MessageTypes = Annotated[tuple[MessageType, ...], Lax, Field(min_length=1), AfterValidator(_unique)]
Purposes = Annotated[tuple[Purpose, ...], Lax, Field(min_length=1), AfterValidator(_unique)]
AgreementIds = Annotated[tuple[AgreementId, ...], Lax, Field(min_length=1), AfterValidator(_unique)]
Algs = Annotated[tuple[Alg, ...], Lax, Field(min_length=1), AfterValidator(_unique)]
FieldPaths = Annotated[
    tuple[FieldPath, ...],
    Lax,
    Field(min_length=1),
    AfterValidator(_unique),
    AfterValidator(_wildcard_alone),
]
