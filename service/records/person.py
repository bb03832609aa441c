"""A person's particulars: names, birth, sex, citizenship, identifiers, documents.

Names are kept twice and never transliterated: in Latin exactly as the MRZ prints
them, and in Cyrillic as the national document gives them. A document that carries
an MRZ must pass every check digit and agree with the structured fields.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from service.records import countries, identifiers
from service.records.failures import Location, RuleFailures
from service.records.fieldtypes import (
    Country,
    CyrillicNamePart,
    DocumentNumber,
    IsoDate,
    Issuer,
    LatinNamePart,
    MrzLine,
    Nationality,
    RecordModel,
    Sex,
    ShortText,
    unique,
)
from service.records.mrz import Td3, date_agrees, sex_agrees, td3_faults

_SEPARATORS = re.compile(r"[ ./\u2116-]")


class LatinName(RecordModel):
    """The name in Latin letters exactly as the MRZ prints it (fillers as spaces)."""

    surname: LatinNamePart
    given_names: LatinNamePart | None = None


class CyrillicName(RecordModel):
    """The name in Cyrillic as the national document gives it."""

    surname: CyrillicNamePart
    given_names: CyrillicNamePart | None = None
    patronymic: CyrillicNamePart | None = None


class Names(RecordModel):
    """A person's name in Latin, in Cyrillic, or both; at least one is required."""

    latin: LatinName | None = None
    cyrillic: CyrillicName | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if self.latin is None and self.cyrillic is None:
            failures = RuleFailures()
            failures.add((), "must give the name in latin, in cyrillic, or both")
            failures.raise_if_any("Names")
        return self


def _identifier_schema(schema: dict[str, Any]) -> None:
    schema["allOf"] = [
        {
            "if": {"properties": {"scheme": {"const": scheme}}},
            "then": {"properties": {"value": {"pattern": pattern}}},
        }
        for scheme, pattern in identifiers.SCHEME_PATTERNS.items()
    ]


class Identifier(RecordModel):
    """A national identification number under a named scheme.

    KZ-IIN: 12 digits with a check digit. KG-PIN: 14 digits, not unique in its
    registry. UZ-PINFL: 14 digits (century/sex, DDMMYY, area, serial, check digit).
    TJ-ID and OTHER: free text.
    """

    model_config = ConfigDict(json_schema_extra=_identifier_schema)

    scheme: identifiers.Scheme
    value: Annotated[str, Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _value_fits_scheme(self) -> Self:
        error = identifiers.identifier_error(self.scheme, self.value)
        if error is not None:
            failures = RuleFailures()
            failures.add(("value",), error)
            failures.raise_if_any("Identifier")
        return self


def _td3_checks(lines: list[str]) -> list[str]:
    failures = RuleFailures()
    for fault in td3_faults(lines[0], lines[1]):
        failures.add((fault.line,), fault.message)
    failures.raise_if_any("MRZ")
    return lines


Mrz = Annotated[
    list[MrzLine],
    Field(min_length=2, max_length=2, description="TD3 MRZ: line 1 and line 2, 44 characters each"),
    AfterValidator(_td3_checks),
]

DocumentType = Literal[
    "passport",
    "diplomatic-passport",
    "service-passport",
    "national-id-card",
    "residence-permit",
    "refugee-travel-document",
    "stateless-travel-document",
    "return-certificate",
    "seaman-book",
    "military-service-book",
    "citizenship-certificate",
    "birth-certificate",
    "driving-licence",
    "official-statement",
    "other",
]


class Document(RecordModel):
    """An identity or travel document. If `mrz` is given it must agree with the fields."""

    type: DocumentType
    number: DocumentNumber
    issuing_state: Issuer
    issue_date: IsoDate | None = None
    expiry_date: IsoDate | None = None
    mrz: Mrz | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.issue_date and self.expiry_date and self.expiry_date <= self.issue_date:
            failures.add(("expiry_date",), "must be after issue_date")
        if self.mrz is not None:
            self._mrz_agrees(Td3(self.mrz[0], self.mrz[1]), failures)
        failures.raise_if_any("Document")
        return self

    def _mrz_agrees(self, td3: Td3, failures: RuleFailures) -> None:
        if td3.document_number.rstrip("<") != _SEPARATORS.sub("", self.number):
            failures.add(
                ("mrz", 1), "MRZ document number (positions 1-9) does not agree with number"
            )
        if countries.from_mrz(td3.issuing_state) != self.issuing_state:
            failures.add(
                ("mrz", 0), "MRZ issuing state (positions 3-5) does not agree with issuing_state"
            )
        if self.expiry_date and not date_agrees(td3.expiry_date, self.expiry_date):
            failures.add(
                ("mrz", 1), "MRZ expiry date (positions 22-27) does not agree with expiry_date"
            )


def holder_failures(
    document: Document,
    location: Location,
    holder: Person | DisclosedPerson,
    failures: RuleFailures,
) -> None:
    """Faults of a document against its holder's birth date, sex and citizenship."""
    born = holder.birth_date
    if born and document.issue_date and document.issue_date < born:
        failures.add((*location, "issue_date"), "is before the holder's birth_date")
    if document.mrz is None:
        return
    td3 = Td3(document.mrz[0], document.mrz[1])
    line2 = (*location, "mrz", 1)
    if born and not date_agrees(td3.birth_date, born):
        failures.add(
            line2, "MRZ birth date (positions 14-19) does not agree with the holder's birth_date"
        )
    if holder.sex and not sex_agrees(td3.sex, holder.sex):
        failures.add(line2, "MRZ sex (position 21) does not agree with the holder's sex")
    if holder.citizenships and countries.from_mrz(td3.nationality) not in holder.citizenships:
        failures.add(
            line2, "MRZ nationality (positions 11-13) is not among the holder's citizenships"
        )


Citizenships = Annotated[
    list[Nationality],
    Field(min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}),
    AfterValidator(unique),
]


class BirthPlace(RecordModel):
    """Where a person was born: today's country and, if known, the locality."""

    country: Country
    locality: ShortText | None = None


class Person(RecordModel):
    """The particulars identifying a person."""

    names: Names
    birth_date: IsoDate
    sex: Sex
    citizenships: Citizenships = Field(
        description="ISO 3166-1 alpha-3 codes of every citizenship the person holds or claims"
    )
    birth_place: BirthPlace | None = None
    identifiers: list[Identifier] = Field(default_factory=list, max_length=8)
    documents: list[Document] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _person_failures(self, "Person")
        return self


class DisclosedPerson(RecordModel):
    """A person's particulars as far as the receiver may see them: every field optional."""

    names: Names | None = None
    birth_date: IsoDate | None = None
    sex: Sex | None = None
    citizenships: Citizenships | None = None
    birth_place: BirthPlace | None = None
    identifiers: list[Identifier] = Field(default_factory=list, max_length=8)
    documents: list[Document] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _person_failures(self, "DisclosedPerson")
        return self


def _person_failures(person: Person | DisclosedPerson, title: str) -> None:
    """Rules shared by a full and a disclosed person."""
    failures = RuleFailures()
    codes = person.citizenships or []
    for alone in (countries.STATELESS, countries.UNSPECIFIED):
        if alone in codes and len(codes) > 1:
            failures.add(("citizenships",), f"{alone} cannot be combined with other codes")
    seen: dict[tuple[str, str], int] = {}
    for index, ident in enumerate(person.identifiers):
        first = seen.setdefault((ident.scheme, ident.value), index)
        if first != index:
            failures.add(("identifiers", index), f"repeats identifier {first}")
    for index, document in enumerate(person.documents):
        holder_failures(document, ("documents", index), person, failures)
    failures.raise_if_any(title)
