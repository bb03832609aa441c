"""Findings about a valid body that the receiver should see but must not refuse.

They concern facts no public source confirms well enough to refuse a message:
an IIN or PINFL that encodes another birth date or sex than the record gives
(IINs issued since 2013 need not encode them), a PINFL check digit (unpublished
algorithm), and an MRZ name that differs from the Latin name.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from service.records import identifiers
from service.records.failures import Location
from service.records.findings import FieldError, body_pointer
from service.records.mrz import Td3
from service.records.person import DisclosedPerson, Document, Names, Person
from service.records.readmission import ReadmissionRequest

Holder = Person | DisclosedPerson


def body_cautions(model: BaseModel) -> list[FieldError]:
    """Every caution for the persons and documents inside a validated body."""
    found: list[FieldError] = []
    for location, person in _persons(model, ()):
        found.extend(_identifier_cautions(person, location))
        for index, document in enumerate(person.documents):
            found.extend(_name_cautions(document, person.names, (*location, "documents", index)))
    if isinstance(model, ReadmissionRequest):
        for index, evidence in enumerate(model.nationality_evidence):
            location = ("nationality_evidence", index, "document")
            found.extend(_name_cautions(evidence.document, model.person.names, location))
    return found


def _persons(value: object, location: Location) -> Iterator[tuple[Location, Holder]]:
    if isinstance(value, Person | DisclosedPerson):
        yield location, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from _persons(getattr(value, name), (*location, field.alias or name))
    elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
        for index, item in enumerate(value):
            yield from _persons(item, (*location, index))


def _identifier_cautions(person: Holder, location: Location) -> Iterator[FieldError]:
    for index, ident in enumerate(person.identifiers):
        pointer = body_pointer((*location, "identifiers", index, "value"))
        for caution in identifiers.identifier_cautions(ident.scheme, ident.value):
            yield FieldError(pointer, caution)
        facts = identifiers.birth_facts(ident.scheme, ident.value)
        if facts is None:
            continue
        if person.birth_date is not None and facts.birth_date != person.birth_date:
            yield FieldError(
                pointer,
                f"{ident.scheme} encodes a birth date other than birth_date; accepted, as "
                "numbers need not encode the birth date",
            )
        if person.sex in ("M", "F") and facts.sex != person.sex:
            yield FieldError(
                pointer,
                f"{ident.scheme} encodes a sex other than sex; accepted, as numbers need "
                "not encode it",
            )


def _name_cautions(
    document: Document, names: Names | None, location: Location
) -> Iterator[FieldError]:
    if document.mrz is None or names is None or names.latin is None:
        return
    td3 = Td3(document.mrz[0], document.mrz[1])
    latin = (names.latin.surname, names.latin.given_names or "")
    if td3.name_truncated() or td3.names() == latin:
        return
    yield FieldError(
        body_pointer((*location, "mrz", 0)),
        "MRZ name does not agree with names/latin; names are compared exactly, never "
        "transliterated",
    )
