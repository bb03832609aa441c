"""Body of `experience.document`: a document the agencies exchange under an agreement's
provision on the exchange of experience (a methodology, a legal act, training material,
an analytical report, a good practice, meeting minutes)."""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, model_validator

from service.protocol.envelope import AGREEMENT_RE, PURPOSE_RE
from service.records.attachments import Attachments
from service.records.failures import RuleFailures
from service.records.fieldtypes import (
    PATTERN_HINTS,
    IsoDate,
    LongText,
    RecordModel,
    Reference,
    ShortText,
    unique,
)

# The envelope's own agreement and purpose members, read from the validation context
# when the body is checked as part of a message (docs/records.md).
ENVELOPE_AGREEMENT_KEY: Final = "agreement"
ENVELOPE_PURPOSE_KEY: Final = "purpose"

# A BCP 47 language tag of the forms the region uses: a language (`ru`, `kk`), with a
# script (`uz-Latn`, `uz-Cyrl`) and/or a region (`en-GB`).
LANGUAGE_PATTERN: Final = r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-[A-Z]{2})?$"
PATTERN_HINTS[LANGUAGE_PATTERN] = "must be a language tag such as ru, kk, uz-Latn or en"
TOPIC_PATTERN: Final = r"^[a-z0-9][a-z0-9 -]{0,62}[a-z0-9]$"
PATTERN_HINTS[TOPIC_PATTERN] = (
    "must be a topic in lowercase letters, digits, spaces and hyphens, e.g. labour migration"
)

DocumentKind = Literal[
    "methodology",
    "legal-act",
    "training-material",
    "analytical-report",
    "good-practice",
    "meeting-minutes",
]
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
Topic = Annotated[str, StringConstraints(pattern=TOPIC_PATTERN)]
Languages = Annotated[
    list[Language],
    Field(min_length=1, max_length=10, json_schema_extra={"uniqueItems": True}),
    AfterValidator(unique),
]
Topics = Annotated[
    list[Topic],
    Field(min_length=1, max_length=20, json_schema_extra={"uniqueItems": True}),
    AfterValidator(unique),
]


class Serves(RecordModel):
    """The agreement provision and purpose the document serves."""

    agreement: Annotated[str, StringConstraints(pattern=AGREEMENT_RE, max_length=64)] = Field(
        description="the agreement's id: the same as the envelope's `agreement`"
    )
    purpose: Annotated[str, StringConstraints(pattern=PURPOSE_RE, max_length=64)] = Field(
        description="the purpose: the same as the envelope's `purpose`"
    )
    provision: Reference | None = Field(
        default=None, description="the article of the agreement, e.g. Article 5"
    )
    objective: ShortText | None = Field(
        default=None, description="what the document is meant to help with"
    )


class ExperienceDocument(RecordModel):
    """Body of `experience.document`."""

    title: ShortText
    kind: DocumentKind
    languages: Languages = Field(description="the languages of the document, as BCP 47 tags")
    summary: LongText
    topics: Topics
    issued_by: ShortText | None = Field(default=None, description="the authority that wrote it")
    issued_on: IsoDate | None = Field(default=None, description="the date of the document")
    reference: Reference | None = Field(default=None, description="the issuer's reference")
    serves: Serves
    attachments: Attachments = Field(
        default_factory=list,
        description="the document's files (docs/protocol.md, 'Attachments (v1.1)')",
    )

    @model_validator(mode="after")
    def _as_enveloped(self, info: ValidationInfo) -> Self:
        failures = RuleFailures()
        context = info.context if isinstance(info.context, dict) else {}
        for key, member in (
            (ENVELOPE_AGREEMENT_KEY, "agreement"),
            (ENVELOPE_PURPOSE_KEY, "purpose"),
        ):
            expected = context.get(key)
            if expected is not None and getattr(self.serves, member) != expected:
                failures.add(("serves", member), f"must be the envelope's {member}, {expected}")
        failures.raise_if_any("ExperienceDocument")
        return self
