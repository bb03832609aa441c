"""experience.document: the document's description, the agreement and purpose it serves
as the envelope's, and its attachments (protocol v1.1)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from service.records.attachments import Attachment
from service.records.registry import body_json_schema
from tests.unit.records.bodies import PDF_ATTACHMENT, accepted, example, refusal

TYPE = "experience.document"
ENVELOPE = {"agreement": "cis-1998", "purpose": "experience-exchange"}


def _errors(body: dict[str, Any], **envelope: str) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(TYPE, body, **envelope)]


def test_example_document_is_valid_under_its_envelope() -> None:
    accepted(TYPE, example(TYPE), **ENVELOPE)


def test_a_document_without_attachments_member_is_valid() -> None:
    body = example(TYPE)
    for optional in ("attachments", "issued_by", "issued_on", "reference"):
        del body[optional]
    del body["serves"]["provision"], body["serves"]["objective"]
    accepted(TYPE, body, **ENVELOPE)


@pytest.mark.parametrize("member", ["agreement", "purpose"])
def test_serves_must_name_the_envelopes_agreement_and_purpose(member: str) -> None:
    envelope = {**ENVELOPE, member: "kz-uz-2019" if member == "agreement" else "statistics"}
    assert _errors(example(TYPE), **envelope) == [
        (f"/body/serves/{member}", f"must be the envelope's {member}, {envelope[member]}")
    ]


@pytest.mark.parametrize(
    ("kind", "valid"),
    [
        ("methodology", True),
        ("legal-act", True),
        ("training-material", True),
        ("analytical-report", True),
        ("good-practice", True),
        ("meeting-minutes", True),
        ("press-release", False),
        ("Methodology", False),
    ],
)
def test_kind_is_one_of_the_six_kinds(kind: str, valid: bool) -> None:
    body = {**example(TYPE), "kind": kind}
    if valid:
        accepted(TYPE, body)
    else:
        assert [path for path, _ in _errors(body)] == ["/body/kind"]


@pytest.mark.parametrize("tag", ["ru", "kk", "uz-Latn", "uz-Cyrl", "en-GB", "tg"])
def test_language_tags_of_the_region_are_accepted(tag: str) -> None:
    accepted(TYPE, {**example(TYPE), "languages": [tag]})


@pytest.mark.parametrize("tag", ["RU", "russian", "uz_Latn", "uz-latn", ""])
def test_a_language_that_is_not_a_tag_is_refused(tag: str) -> None:
    assert [path for path, _ in _errors({**example(TYPE), "languages": [tag]})] == [
        "/body/languages/0"
    ]


@pytest.mark.parametrize("member", ["languages", "topics"])
def test_a_language_or_topic_listed_twice_is_refused(member: str) -> None:
    body = example(TYPE)
    body[member] = [body[member][0], body[member][0]]
    assert _errors(body) == [(f"/body/{member}", f"must not list {body[member][0]} twice")]


@pytest.mark.parametrize("member", ["languages", "topics"])
def test_languages_and_topics_may_not_be_empty(member: str) -> None:
    assert [path for path, _ in _errors({**example(TYPE), member: []})] == [f"/body/{member}"]


def test_a_document_names_its_attachments() -> None:
    accepted(TYPE, {**example(TYPE), "attachments": [PDF_ATTACHMENT]}, **ENVELOPE)


def test_the_same_file_is_named_once() -> None:
    body = {**example(TYPE), "attachments": [PDF_ATTACHMENT, {**PDF_ATTACHMENT, "name": "b.pdf"}]}
    assert [path for path, _ in _errors(body, **ENVELOPE)] == ["/body/attachments"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("паспорт, копия.pdf", True),
        ("minutes 2025-03.docx", True),
        (".", False),
        ("..", False),
        ("../etc/passwd", False),
        ("dir\\file.pdf", False),
        ("line\nbreak.pdf", False),
        ("x" * 256, False),
    ],
)
def test_attachment_names_are_file_names_without_a_directory(name: str, valid: bool) -> None:
    # The item's model and its published schema agree.
    item = {**PDF_ATTACHMENT, "name": name}
    schema = {"$defs": body_json_schema(TYPE)["$defs"], "$ref": "#/$defs/Attachment"}
    errors = list(Draft202012Validator(schema).iter_errors(item))
    assert (errors == []) is valid, [e.message for e in errors]
    if valid:
        Attachment.model_validate(item)
    else:
        with pytest.raises(ValidationError) as caught:
            Attachment.model_validate(item)
        assert [e["loc"] for e in caught.value.errors()] == [("name",)]


def test_the_published_schema_accepts_the_example_and_attachments() -> None:
    validator = Draft202012Validator(body_json_schema(TYPE))
    assert list(validator.iter_errors(example(TYPE))) == []
    assert list(validator.iter_errors({**example(TYPE), "attachments": [PDF_ATTACHMENT]})) == []
