"""Bodies of `readmission.request` and `readmission.response`.

Time limits (for example: reply within 25 days, extendable to 60; transfer within
90) differ between agreements; they travel as dates in the body, computed by the
sender from its configuration, never as constants of this module.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from service.records.attachments import Attachments
from service.records.failures import RuleFailures
from service.records.fieldtypes import IsoDate, RecordModel, Reference, ShortText
from service.records.person import Document, Person, holder_failures
from service.records.places import BorderCrossingPoint


class Evidence(RecordModel):
    """A document offered as evidence of nationality."""

    basis: Literal["proof", "prima-facie"] = Field(
        description="proof establishes nationality; prima-facie evidence makes it credible"
    )
    document: Document
    form: Literal["original", "certified-copy", "copy"] = "original"
    remarks: ShortText | None = None


class Transfer(RecordModel):
    """When and where the person is to be handed over."""

    date: IsoDate
    border_crossing_point: BorderCrossingPoint
    transport: Literal["air", "road", "rail", "sea"] | None = None


class ReadmissionRequest(RecordModel):
    """Body of `readmission.request`: a request to take back a person."""

    case_reference: Reference = Field(description="the requesting agency's file number")
    person: Person
    nationality_evidence: list[Evidence] = Field(min_length=1, max_length=20)
    escort_needed: bool
    escort_reason: ShortText | None = Field(
        default=None, description="why an escort is needed; only with escort_needed"
    )
    proposed_transfer: Transfer | None = None
    reply_by: IsoDate | None = Field(
        default=None, description="the reply deadline under the agreement, as configured"
    )
    attachments: Attachments = Field(
        default_factory=list,
        description="copies of the passport and other proof of nationality (protocol v1.1)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.escort_reason is not None and not self.escort_needed:
            failures.add(("escort_reason",), "is only allowed when escort_needed is true")
        for index, evidence in enumerate(self.nationality_evidence):
            location = ("nationality_evidence", index, "document")
            holder_failures(evidence.document, location, self.person, failures)
        failures.raise_if_any("ReadmissionRequest")
        return self


RefusalCode = Literal[
    "nationality-not-established",
    "person-not-identified",
    "insufficient-evidence",
    "evidence-not-authentic",
    "outside-agreement",
    "time-limit-exceeded",
    "other",
]


class Reason(RecordModel):
    """Why a request was refused."""

    code: RefusalCode
    detail: ShortText | None = Field(default=None, description="required when code is other")

    @model_validator(mode="after")
    def _detail_for_other(self) -> Self:
        failures = RuleFailures()
        if self.code == "other" and self.detail is None:
            failures.add(("detail",), "is required when code is other")
        failures.raise_if_any("Reason")
        return self


class Deadlines(RecordModel):
    """Dates set under the agreement's configured time limits."""

    reply_by: IsoDate | None = Field(
        default=None, description="extended deadline of the final reply"
    )
    information_by: IsoDate | None = Field(
        default=None, description="when the requested information must arrive"
    )
    transfer_by: IsoDate | None = Field(
        default=None, description="last day of the transfer; required when accepted"
    )


class ReadmissionResponse(RecordModel):
    """Body of `readmission.response`, `reply_to` the request."""

    case_reference: Reference = Field(description="the requesting agency's file number")
    decision: Literal["accepted", "refused", "more-information-needed"]
    decision_date: IsoDate
    reasons: list[Reason] = Field(default_factory=list, max_length=10)
    information_needed: list[ShortText] = Field(default_factory=list, max_length=20)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    transfer: Transfer | None = Field(default=None, description="agreed arrangements when accepted")
    attachments: Attachments = Field(
        default_factory=list,
        description="copies of documents the answer rests on (protocol v1.1)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        self._decision_fields(failures)
        self._dates_in_order(failures)
        failures.raise_if_any("ReadmissionResponse")
        return self

    def _decision_fields(self, failures: RuleFailures) -> None:
        decision = self.decision
        if decision == "refused" and not self.reasons:
            failures.add(("reasons",), "a refusal must give at least one reason")
        if decision == "more-information-needed" and not self.information_needed:
            failures.add(("information_needed",), "must say which information is needed")
        if decision != "more-information-needed" and self.information_needed:
            failures.add(("information_needed",), "is only allowed with more-information-needed")
        if decision == "accepted" and self.deadlines.transfer_by is None:
            failures.add(("deadlines", "transfer_by"), "is required when the request is accepted")
        if decision != "accepted" and self.transfer is not None:
            failures.add(("transfer",), "is only allowed when the request is accepted")

    def _dates_in_order(self, failures: RuleFailures) -> None:
        decided = self.decision_date
        named: dict[str, date | None] = self.deadlines.model_dump(exclude_none=True)
        for name, deadline in named.items():
            if deadline is not None and deadline < decided:
                failures.add(("deadlines", name), "must not be before decision_date")
        if self.transfer is not None:
            if self.transfer.date < decided:
                failures.add(("transfer", "date"), "must not be before decision_date")
            limit = self.deadlines.transfer_by
            if limit is not None and self.transfer.date > limit:
                failures.add(("transfer", "date"), "must not be after deadlines/transfer_by")
