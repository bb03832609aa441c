"""Bodies of `citizenship.verification-request` and `citizenship.verification-response`."""

from __future__ import annotations

from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from service.records.failures import RuleFailures
from service.records.fieldtypes import (
    IsoDate,
    LongText,
    RecordModel,
    Reference,
    ShortText,
    unique,
)
from service.records.person import DisclosedPerson, Person

VerificationReason = Literal[
    "visa-application",
    "residence-permit-application",
    "work-permit-application",
    "citizenship-application",
    "document-issuance",
    "border-control",
    "illegal-migration-control",
    "readmission",
    "other",
]

# docs/records.md's results, plus docs/protocol.md's `unknown` so that nodes built from the
# protocol text alone interoperate.
VerificationResult = Literal[
    "confirmed", "not-confirmed", "not-found", "insufficient-data", "unknown"
]

MatchField = Literal[
    "names.latin",
    "names.cyrillic",
    "birth_date",
    "birth_place",
    "sex",
    "citizenships",
    "identifiers",
    "documents",
]
MATCH_FIELDS: Final = 8
MatchFields = Annotated[
    list[MatchField],
    Field(max_length=MATCH_FIELDS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(unique),
]


class VerificationRequest(RecordModel):
    """Body of `citizenship.verification-request`: is this person a citizen of yours?"""

    reason: VerificationReason
    reason_detail: ShortText | None = Field(
        default=None, description="required when reason is other"
    )
    case_reference: Reference | None = Field(
        default=None, description="the requesting agency's file number"
    )
    person: Person

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.reason == "other" and self.reason_detail is None:
            failures.add(("reason_detail",), "is required when reason is other")
        failures.raise_if_any("VerificationRequest")
        return self


class VerificationResponse(RecordModel):
    """Body of `citizenship.verification-response`, `reply_to` the request."""

    result: VerificationResult
    checked_on: IsoDate = Field(description="the date the registry was consulted")
    matched_fields: MatchFields = Field(
        default_factory=list, description="the request's person fields that matched"
    )
    needed_fields: MatchFields = Field(
        default_factory=list,
        description="with insufficient-data: the fields that would allow a decision",
    )
    person: DisclosedPerson | None = Field(
        default=None, description="registry particulars the access rules let the requester see"
    )
    remarks: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.result == "confirmed" and not self.matched_fields:
            failures.add(
                ("matched_fields",), "a confirmed result must name the fields that matched"
            )
        if self.result == "not-found" and self.matched_fields:
            failures.add(("matched_fields",), "a not-found result cannot have matched fields")
        if self.result == "not-found" and self.person is not None:
            failures.add(("person",), "a not-found result cannot carry particulars")
        if self.needed_fields and self.result != "insufficient-data":
            failures.add(("needed_fields",), "is only allowed with the result insufficient-data")
        failures.raise_if_any("VerificationResponse")
        return self
