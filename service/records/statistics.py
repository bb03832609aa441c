"""Body of `statistics.migration-flows`: an SDMX-style dataset of aggregate counts.

The dataset declares, in `structure`, the codes it uses for each dimension and
attribute (as SDMX-JSON's structure does), then lists its observations. Each
observation is a small flat object keyed by the SDMX concept ids. Checks that look
at one observation run for every observation; checks across the dataset (declared
codes, duplicate keys) run once every observation is valid on its own.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Final, Self, TypeVar

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from service.records import countries, sdmx
from service.records.attachments import Attachments
from service.records.failures import RuleFailures
from service.records.fieldtypes import PATTERN_HINTS, LongText, RecordModel, Reference, unique

DEFAULT_MAX_OBSERVATIONS: Final = 100_000
# The media type of observations that travel as an attachment (protocol v1.1).
OBSERVATIONS_MEDIA_TYPE: Final = "application/json"
MAX_OBSERVATIONS_KEY: Final = "max_observations"

PATTERN_HINTS[sdmx.AGE_PATTERN] = "must be an age group: _T, Y<n>T<m>, Y_LT<n> or Y_GE<n>"
PATTERN_HINTS[sdmx.PERIOD_PATTERN] = "must be a period: 2024, 2024-Q1 or 2024-03"
AREA_PATTERN: Final = r"^[A-Z]{3}$"
COUNTERPART_PATTERN: Final = r"^(?:[A-Z]{3}|_T)$"
PATTERN_HINTS[AREA_PATTERN] = "must be an ISO 3166-1 alpha-3 country code"
PATTERN_HINTS[COUNTERPART_PATTERN] = (
    "must be an ISO 3166-1 alpha-3 code, XXA, XXB, XXC, XXX or _T (all countries)"
)

REF_AREA_CODES: Final = countries.ISO_ALPHA3
COUNTERPART_CODES: Final = countries.NATIONALITY_CODES | {sdmx.TOTAL}

AgeCode = Annotated[str, StringConstraints(pattern=sdmx.AGE_PATTERN)]
Period = Annotated[str, StringConstraints(pattern=sdmx.PERIOD_PATTERN)]
RefArea = Annotated[
    str,
    StringConstraints(pattern=AREA_PATTERN),
    Field(json_schema_extra={"enum": sorted(REF_AREA_CODES)}),
]
CounterpartArea = Annotated[
    str,
    StringConstraints(pattern=COUNTERPART_PATTERN),
    Field(json_schema_extra={"enum": sorted(COUNTERPART_CODES)}),
]


@with_config(ConfigDict(extra="forbid", strict=True))
class Observation(TypedDict):
    """One count: its dimensions, its value and its attributes."""

    FREQ: sdmx.Freq
    REF_AREA: RefArea
    COUNTERPART_AREA: CounterpartArea
    INDICATOR: sdmx.Indicator
    SEX: sdmx.SexCode
    AGE: AgeCode
    TIME_PERIOD: Period
    OBS_VALUE: Annotated[int, Field(ge=0)] | None
    UNIT_MEASURE: sdmx.UnitMeasure
    OBS_STATUS: sdmx.ObsStatus
    CONF_STATUS: sdmx.ConfStatus


def _observation_rules(obs: Observation) -> Observation:
    failures = RuleFailures()
    freq, period = obs["FREQ"], obs["TIME_PERIOD"]
    if not sdmx.period_fits(freq, period):
        failures.add(
            ("TIME_PERIOD",),
            f"must be a {sdmx.FREQ_NAMES[freq]} period like {sdmx.PERIOD_EXAMPLES[freq]} "
            f"because FREQ is {freq}",
        )
    value, status = obs["OBS_VALUE"], obs["OBS_STATUS"]
    if value is None and status != sdmx.MISSING:
        failures.add(("OBS_VALUE",), "may be null only when OBS_STATUS is M (missing)")
    if value is not None and status == sdmx.MISSING:
        failures.add(("OBS_VALUE",), "must be null when OBS_STATUS is M (missing)")
    if value is not None and obs["CONF_STATUS"] in sdmx.SUPPRESSED:
        failures.add(
            ("OBS_VALUE",),
            f"must be null (suppressed) when CONF_STATUS is {obs['CONF_STATUS']}",
        )
    failures.raise_if_any("Observation")
    return obs


CheckedObservation = Annotated[Observation, AfterValidator(_observation_rules)]


C = TypeVar("C", bound=Hashable)
Codes = Annotated[
    list[C],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(unique),
]


class Dimensions(RecordModel):
    """The codes the dataset uses for each dimension."""

    FREQ: Codes[sdmx.Freq] = Field(max_length=3)
    REF_AREA: Codes[RefArea] = Field(max_length=300)
    COUNTERPART_AREA: Codes[CounterpartArea] = Field(max_length=300)
    INDICATOR: Codes[sdmx.Indicator] = Field(max_length=20)
    SEX: Codes[sdmx.SexCode] = Field(max_length=3)
    AGE: Codes[AgeCode] = Field(max_length=200)
    TIME_PERIOD: Codes[Period] = Field(max_length=2000)

    @model_validator(mode="after")
    def _known_codes(self) -> Self:
        failures = RuleFailures()
        for name, known in (("REF_AREA", REF_AREA_CODES), ("COUNTERPART_AREA", COUNTERPART_CODES)):
            for index, code in enumerate(getattr(self, name)):
                if code not in known:
                    failures.add((name, index), f"{code} is not a code of the {name} codelist")
        for index, code in enumerate(self.AGE):
            error = sdmx.age_error(code)
            if error is not None:
                failures.add(("AGE", index), error)
        failures.raise_if_any("Dimensions")
        return self


class Attributes(RecordModel):
    """The codes the dataset uses for each attribute."""

    UNIT_MEASURE: Codes[sdmx.UnitMeasure] = Field(max_length=2)
    OBS_STATUS: Codes[sdmx.ObsStatus] = Field(max_length=8)
    CONF_STATUS: Codes[sdmx.ConfStatus] = Field(max_length=4)


class Structure(RecordModel):
    """The data structure the dataset follows and the codes it uses."""

    dsd: sdmx.DsdId
    dimensions: Dimensions
    attributes: Attributes


_CONCEPTS: Final = tuple((name, "dimensions") for name in sdmx.DIMENSIONS) + tuple(
    (name, "attributes") for name in sdmx.ATTRIBUTES
)


class MigrationFlows(RecordModel):
    """Body of `statistics.migration-flows`."""

    dataset_id: Reference = Field(description="the sender's identifier of this dataset")
    note: LongText | None = Field(default=None, description="methodological notes")
    structure: Structure
    observations: list[CheckedObservation] | None = Field(
        default=None,
        min_length=1,
        description="the observations inline; absent when they travel as the attachment",
    )
    attachments: Attachments = Field(
        default_factory=list,
        max_length=1,
        description=(
            "protocol v1.1: the observations as one application/json attachment (a JSON "
            "array of observations), for a dataset larger than the message limit"
        ),
    )

    @field_validator("observations", mode="before")
    @classmethod
    def _not_too_many(cls, value: object, info: ValidationInfo) -> object:
        limit = DEFAULT_MAX_OBSERVATIONS
        if isinstance(info.context, dict):
            limit = int(info.context.get(MAX_OBSERVATIONS_KEY, limit))
        if isinstance(value, list) and len(value) > limit:
            failures = RuleFailures()
            failures.add((), f"must have at most {limit} observations (has {len(value)})")
            failures.raise_if_any("MigrationFlows")
        return value

    @model_validator(mode="after")
    def _dataset_rules(self) -> Self:
        failures = RuleFailures()
        if self.observations is None:
            self._observations_attached(failures)
            failures.raise_if_any("MigrationFlows")
            return self
        if self.attachments:
            failures.add(("attachments",), "must be empty when the observations are inline")
        self._declared(failures)
        self._distinct_keys(failures)
        failures.raise_if_any("MigrationFlows")
        return self

    def _observations_attached(self, failures: RuleFailures) -> None:
        if not self.attachments:
            failures.add(("observations",), "required unless they are the attachment")
        elif self.attachments[0].media_type != OBSERVATIONS_MEDIA_TYPE:
            failures.add(
                ("attachments", 0, "media_type"),
                f"must be {OBSERVATIONS_MEDIA_TYPE}: the attachment holds the observations",
            )

    @property
    def inline_observations(self) -> list[Observation]:
        return self.observations or []

    def _declared(self, failures: RuleFailures) -> None:
        observations = self.inline_observations
        for name, section in _CONCEPTS:
            declared = set(getattr(getattr(self.structure, section), name))
            used = {obs[name] for obs in observations}  # type: ignore[literal-required]
            if used <= declared:
                continue
            for index, obs in enumerate(observations):
                code = obs[name]  # type: ignore[literal-required]
                if code not in declared:
                    failures.add(
                        ("observations", index, name),
                        f"{code} is not declared in structure/{section}/{name}",
                    )

    def _distinct_keys(self, failures: RuleFailures) -> None:
        first_of: dict[tuple[str, ...], int] = {}
        for index, obs in enumerate(self.inline_observations):
            key = (
                obs["FREQ"], obs["REF_AREA"], obs["COUNTERPART_AREA"], obs["INDICATOR"],
                obs["SEX"], obs["AGE"], obs["TIME_PERIOD"],
            )  # fmt: skip
            first = first_of.setdefault(key, index)
            if first != index:
                failures.add(
                    ("observations", index),
                    f"has the same dimensions as observation {first}",
                )
