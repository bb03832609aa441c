"""The persons a message concerns, as keyed digests, and the fields it discloses.

Pure functions over a message body. A person is indexed by every identifier the body
gives for them, never by its value: each is an HMAC-SHA-256 under the node's subject
key (a secret file, `privacy.subject_key_file`) of its kind and normalised value:

- a national number (`id:<scheme>`): KZ-IIN, KG-PIN, UZ-PINFL, TJ-ID, OTHER;
- a document number (`doc`), without separators and in capitals, whatever its issuer;
- a name with the birth date (`name`): surname and given names, each in Latin and in
  Cyrillic as the body gives them, case-folded, spaces collapsed.

Without the key a digest cannot be tested against a guessed IIN, so a copy of the
index tells nothing about whom it concerns. A query computes the same digests from
what the data-protection officer types and looks them up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

MIN_KEY_BYTES: Final = 32
# The message types whose bodies concern a person (docs/records.md). A response that
# carries no particulars still concerns the person of the request it answers.
PERSONAL_TYPES: Final = frozenset(
    {
        "citizenship.verification-request",
        "citizenship.verification-response",
        "migration.violation-notice",
        "readmission.request",
        "readmission.response",
    }
)
_DOCUMENT_SEPARATORS = re.compile(r"[ ./\u2116-]")


@dataclass(frozen=True)
class Disclosed:
    """What one message discloses: digests of its persons and the fields it carries."""

    subjects: frozenset[str]
    fields: tuple[str, ...]


def _digest(key: bytes, kind: str, value: str) -> str:
    # surrogatepass: a lone surrogate (valid in JSON text) digests to a value that
    # matches nothing, rather than failing.
    data = f"{kind}\x1f{value}".encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def identifier_digest(key: bytes, scheme: str, value: str) -> str:
    return _digest(key, f"id:{scheme}", value.strip())


def document_digest(key: bytes, number: str) -> str:
    return _digest(key, "doc", _DOCUMENT_SEPARATORS.sub("", number).upper())


def _name_part(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def name_digest(key: bytes, surname: str, given_names: str | None, birth_date: str) -> str:
    joined = f"{_name_part(surname)}\x1e{_name_part(given_names)}\x1e{birth_date.strip()}"
    return _digest(key, "name", joined)


def disclosure_of(key: bytes, msg_type: str, body: Mapping[str, Any]) -> Disclosed | None:
    """What a message of `msg_type` with `body` discloses; None if it concerns no person."""
    if msg_type not in PERSONAL_TYPES:
        return None
    subjects: set[str] = set()
    person = body.get("person")
    if isinstance(person, Mapping):
        subjects.update(_person_subjects(key, person))
    for evidence in _mappings(body.get("nationality_evidence")):
        document = evidence.get("document")
        if isinstance(document, Mapping):
            subjects.update(_document_subjects(key, [document]))
    return Disclosed(frozenset(subjects), tuple(sorted(set(leaf_paths(body)))))


def _person_subjects(key: bytes, person: Mapping[str, Any]) -> Iterator[str]:
    for ident in _mappings(person.get("identifiers")):
        scheme, value = ident.get("scheme"), ident.get("value")
        if isinstance(scheme, str) and isinstance(value, str):
            yield identifier_digest(key, scheme, value)
    yield from _document_subjects(key, _mappings(person.get("documents")))
    born = person.get("birth_date")
    names = person.get("names")
    if isinstance(born, str) and isinstance(names, Mapping):
        for script in ("latin", "cyrillic"):
            name = names.get(script)
            if isinstance(name, Mapping) and isinstance(name.get("surname"), str):
                given = name.get("given_names")
                yield name_digest(
                    key, name["surname"], given if isinstance(given, str) else None, born
                )


def _document_subjects(key: bytes, documents: list[Mapping[str, Any]]) -> Iterator[str]:
    for document in documents:
        number = document.get("number")
        if isinstance(number, str):
            yield document_digest(key, number)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def leaf_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """The dotted paths of every value in `value`, without list indices: the form in
    which an access rule names fields and a removal is recorded (partners/fields.py)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaf_paths(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from leaf_paths(item, prefix)
    elif prefix:
        yield prefix
