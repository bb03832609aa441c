"""Keyed digests of the persons a body concerns, and the fields it discloses."""

from __future__ import annotations

import hashlib
import hmac

from service.privacy.subjects import (
    disclosure_of,
    document_digest,
    identifier_digest,
    leaf_paths,
    name_digest,
)
from tests.support.nodes import example_body

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_an_identifier_digest_is_the_hmac_sha256_of_its_kind_and_value() -> None:
    expected = hmac.new(KEY, b"id:KZ-IIN\x1f910314401230", hashlib.sha256).hexdigest()
    assert identifier_digest(KEY, "KZ-IIN", "910314401230") == expected


def test_digests_depend_on_the_key_and_the_scheme() -> None:
    digest = identifier_digest(KEY, "KG-PIN", "12345678901234")
    assert identifier_digest(OTHER_KEY, "KG-PIN", "12345678901234") != digest
    assert identifier_digest(KEY, "UZ-PINFL", "12345678901234") != digest


def test_document_numbers_ignore_separators_and_case() -> None:
    assert document_digest(KEY, "fa 123-4567") == document_digest(KEY, "FA1234567")
    assert document_digest(KEY, "FA1234568") != document_digest(KEY, "FA1234567")


def test_names_ignore_case_and_spacing_but_not_the_birth_date() -> None:
    digest = name_digest(KEY, "ZHAKSYBEKOVA", "AIGERIM", "1991-03-14")
    assert name_digest(KEY, " zhaksybekova ", "Aigerim", "1991-03-14") == digest
    assert name_digest(KEY, "ZHAKSYBEKOVA", "AIGERIM", "1991-03-15") != digest
    assert name_digest(KEY, "ZHAKSYBEKOVA", None, "1991-03-14") != digest


def test_a_request_is_indexed_by_identifier_document_and_both_names() -> None:
    body = example_body("citizenship.verification-request")
    disclosed = disclosure_of(KEY, "citizenship.verification-request", body)
    assert disclosed is not None
    assert disclosed.subjects == {
        identifier_digest(KEY, "KZ-IIN", "910314401230"),
        document_digest(KEY, "N07654321"),
        name_digest(KEY, "ZHAKSYBEKOVA", "AIGERIM", "1991-03-14"),
        name_digest(KEY, "Жаксыбекова", "Айгерим", "1991-03-14"),
    }


def test_readmission_evidence_documents_are_indexed() -> None:
    body = example_body("readmission.request")
    disclosed = disclosure_of(KEY, "readmission.request", body)
    assert disclosed is not None
    assert document_digest(KEY, "400123456") in disclosed.subjects
    assert identifier_digest(KEY, "TJ-ID", "A0312885") in disclosed.subjects


def test_statistics_concern_no_person() -> None:
    body = example_body("statistics.migration-flows")
    assert disclosure_of(KEY, "statistics.migration-flows", body) is None


def test_a_response_without_particulars_discloses_fields_but_names_no_one() -> None:
    body = {"result": "not-found", "checked_on": "2026-11-18"}
    disclosed = disclosure_of(KEY, "citizenship.verification-response", body)
    assert disclosed is not None
    assert disclosed.subjects == frozenset()
    assert disclosed.fields == ("checked_on", "result")


def test_leaf_paths_drop_list_indices() -> None:
    body = {"person": {"documents": [{"number": "1"}, {"number": "2", "type": "passport"}]}}
    assert sorted(set(leaf_paths(body))) == ["person.documents.number", "person.documents.type"]


def test_a_lone_surrogate_digests_without_failing() -> None:
    # The command line passes undecodable bytes of argv as lone surrogates.
    assert len(document_digest(KEY, "N0\udc80")) == 64
    assert len(name_digest(KEY, "\ud800", None, "1991-03-14")) == 64
