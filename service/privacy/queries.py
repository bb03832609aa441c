"""The data-protection officer's question: who received or sent data about this person?

A `SubjectQuery` holds what the officer knows of the person (national numbers,
document numbers, names with the birth date); `subject_digests` turns it into the
index's digests, checking each value as a record would. `plan_query` makes the
`privacy.query` audit entry holding the digests and the officer's name, never a
value, which is appended before the answer is read. The API and the CLI both
call `plan_query` and `answer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine

from service.audit import entries as ev
from service.audit.entries import AuditEvent
from service.ledger.committer import AuditOnly, GroupCommitter
from service.privacy.index import find_disclosures
from service.privacy.subjects import document_digest, identifier_digest, name_digest
from service.protocol.problems import Problem
from service.records.identifiers import SCHEME_PATTERNS, identifier_error

MAX_VALUES = 20


@dataclass(frozen=True)
class NameQuery:
    surname: str
    given_names: str | None
    birth_date: str


@dataclass(frozen=True)
class SubjectQuery:
    identifiers: tuple[tuple[str, str], ...] = ()
    documents: tuple[str, ...] = ()
    names: tuple[NameQuery, ...] = ()

    @property
    def kinds(self) -> list[str]:
        kinds = {scheme for scheme, _ in self.identifiers}
        if self.documents:
            kinds.add("document")
        if self.names:
            kinds.add("name")
        return sorted(kinds)


@dataclass(frozen=True)
class DisclosureAnswer:
    subjects: list[str]
    disclosures: list[dict[str, Any]]
    truncated: bool
    audit_index: int


def _invalid(path: str, message: str) -> Problem:
    return Problem(
        "invalid-parameters",
        f"{path}: {message}",
        extra={"errors": [{"path": path, "message": message}]},
    )


def subject_digests(key: bytes, query: SubjectQuery) -> list[str]:
    """The index digests of everything in `query`; Problem for a value no record holds."""
    count = len(query.identifiers) + len(query.documents) + len(query.names)
    if count == 0:
        raise _invalid("/", "give at least one identifier, document number or name")
    if count > MAX_VALUES:
        raise _invalid("/", f"give at most {MAX_VALUES} values in one query")
    digests: set[str] = set()
    for index, (scheme, value) in enumerate(query.identifiers):
        if scheme not in SCHEME_PATTERNS:
            raise _invalid(f"/identifiers/{index}/scheme", f"unknown scheme {scheme!r}")
        error = identifier_error(scheme, value)
        if error is not None:
            raise _invalid(f"/identifiers/{index}/value", error)
        digests.add(identifier_digest(key, scheme, value))
    for index, number in enumerate(query.documents):
        if not number.strip() or len(number) > 64:
            raise _invalid(f"/documents/{index}", "must be a document number of 1 to 64 characters")
        digests.add(document_digest(key, number))
    for index, name in enumerate(query.names):
        if not name.surname.strip() or len(name.surname) > 200:
            raise _invalid(f"/names/{index}/surname", "must be 1 to 200 characters")
        try:
            born = date.fromisoformat(name.birth_date)
        except ValueError:
            raise _invalid(f"/names/{index}/birth_date", "must be a date YYYY-MM-DD") from None
        digests.add(name_digest(key, name.surname, name.given_names, born.isoformat()))
    return sorted(digests)


def not_configured() -> Problem:
    return Problem(
        "not-found",
        "this node keeps no disclosure index: privacy.subject_key_file is not configured",
    )


def plan_query(
    key: bytes | None, query: SubjectQuery, *, asked_by: str
) -> tuple[list[str], AuditOnly]:
    """The digests to look up and the unit that audits the query (digests only)."""
    if key is None:
        raise not_configured()
    digests = subject_digests(key, query)
    detail = {"asked_by": asked_by, "kinds": query.kinds, "subjects": digests}
    return digests, AuditOnly([AuditEvent(ev.PRIVACY_QUERY, "ok", detail=detail)])


def answer(conn: Connection, digests: list[str], audit_index: int) -> DisclosureAnswer:
    items, truncated = find_disclosures(conn, digests)
    return DisclosureAnswer(digests, items, truncated, audit_index)


def ask_sync(
    key: bytes | None,
    committer: GroupCommitter,
    reader: Engine,
    query: SubjectQuery,
    *,
    asked_by: str,
) -> DisclosureAnswer:
    """Audit the query, then answer it from the index (the CLI's blocking form)."""
    digests, unit = plan_query(key, query, asked_by=asked_by)
    index = committer.run_sync(unit)
    with reader.connect() as conn:
        return answer(conn, digests, index)
