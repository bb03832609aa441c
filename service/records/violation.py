"""Body of `migration.violation-notice`: a citizen of the receiver's country found in
violation (illegal stay, illegal work, overstay), what was done, and any entry ban."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from service.records.attachments import Attachments
from service.records.failures import RuleFailures
from service.records.fieldtypes import (
    PATTERN_HINTS,
    IsoDate,
    RecordModel,
    Reference,
    ShortText,
)
from service.records.person import Person
from service.records.places import BorderCrossingPoint, Place

AMOUNT_PATTERN: Final = r"^(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,2})?$"
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
PATTERN_HINTS[AMOUNT_PATTERN] = "must be a decimal amount such as 14766 or 14766.50"
PATTERN_HINTS[CURRENCY_PATTERN] = "must be an ISO 4217 currency code such as KZT"


class LegalProvision(RecordModel):
    """A provision of law the violation falls under."""

    act: ShortText = Field(description="the law or code, e.g. the Code of Administrative Offences")
    article: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="article, part, paragraph"
    )


class Violation(RecordModel):
    """What was found, when and where."""

    kind: Literal["illegal-stay", "illegal-work", "overstay"]
    detected_at: IsoDate
    entry_date: IsoDate | None = Field(default=None, description="the last entry into the country")
    legal_stay_until: IsoDate | None = Field(
        default=None, description="last day of lawful stay; required for an overstay"
    )
    location: Place
    grounds: list[LegalProvision] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        failures = RuleFailures()
        if self.entry_date and self.detected_at < self.entry_date:
            failures.add(("detected_at",), "must not be before entry_date")
        if self.kind == "overstay" and self.legal_stay_until is None:
            failures.add(("legal_stay_until",), "is required for an overstay")
        stay = self.legal_stay_until
        if self.kind != "illegal-work" and stay is not None and stay >= self.detected_at:
            failures.add(
                ("legal_stay_until",),
                "must be before detected_at: the stay was still lawful when it was detected",
            )
        failures.raise_if_any("Violation")
        return self


class Money(RecordModel):
    """An amount in a currency, as a decimal string to avoid binary rounding."""

    amount: Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN)]
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]


class Measure(RecordModel):
    """A measure taken: a fine, an expulsion or a deportation."""

    kind: Literal["fine", "expulsion", "deportation"]
    decision_date: IsoDate
    execution_date: IsoDate | None = Field(default=None, description="absent until executed")
    authority: ShortText | None = None
    decision_reference: Reference | None = None
    fine: Money | None = Field(default=None, description="required for, and only for, a fine")
    border_crossing_point: BorderCrossingPoint | None = Field(
        default=None, description="where the person was or is to be removed"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.execution_date and self.execution_date < self.decision_date:
            failures.add(("execution_date",), "must not be before decision_date")
        if self.kind == "fine" and self.fine is None:
            failures.add(("fine",), "is required for a fine")
        if self.kind != "fine" and self.fine is not None:
            failures.add(("fine",), f"is only allowed for a fine, not for {self.kind}")
        if self.kind == "fine" and self.border_crossing_point is not None:
            failures.add(("border_crossing_point",), "is not allowed for a fine")
        failures.raise_if_any("Measure")
        return self


class EntryBan(RecordModel):
    """A ban on entry from `from` until `until`, or indefinite."""

    model_config = ConfigDict(serialize_by_alias=True)

    from_: IsoDate = Field(alias="from")
    until: IsoDate | None = Field(default=None, description="last day of the ban")
    indefinite: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        failures = RuleFailures()
        if self.indefinite and self.until is not None:
            failures.add(("until",), "must be absent when the ban is indefinite")
        if not self.indefinite and self.until is None:
            failures.add(("until",), "is required unless indefinite is true")
        if self.until is not None and self.until <= self.from_:
            failures.add(("until",), "must be after from")
        failures.raise_if_any("EntryBan")
        return self


class ViolationNotice(RecordModel):
    """Body of `migration.violation-notice`."""

    case_reference: Reference | None = None
    person: Person
    violation: Violation
    measures: list[Measure] = Field(default_factory=list, max_length=8)
    entry_ban: EntryBan | None = None
    attachments: Attachments = Field(
        default_factory=list, description="the decisions, as files (protocol v1.1)"
    )

    @model_validator(mode="after")
    def _after_birth(self) -> Self:
        failures = RuleFailures()
        born: date = self.person.birth_date
        if self.violation.entry_date and self.violation.entry_date < born:
            failures.add(("violation", "entry_date"), "must not be before the person's birth_date")
        if self.violation.detected_at < born:
            failures.add(("violation", "detected_at"), "must not be before the person's birth_date")
        failures.raise_if_any("ViolationNotice")
        return self
