"""Codelists and code rules of the migration-flows dataset (SDMX style).

A dataset follows the data structure definition `MIGEX:MIGRATION_FLOWS(1.0)`:
dimensions FREQ, REF_AREA, COUNTERPART_AREA, INDICATOR, SEX, AGE, TIME_PERIOD and
attributes UNIT_MEASURE, OBS_STATUS, CONF_STATUS. Areas are ISO 3166-1 alpha-3 codes.
"""

from __future__ import annotations

import re
from typing import Final, Literal

DsdId = Literal["MIGEX:MIGRATION_FLOWS(1.0)"]
DIMENSIONS: Final = (
    "FREQ",
    "REF_AREA",
    "COUNTERPART_AREA",
    "INDICATOR",
    "SEX",
    "AGE",
    "TIME_PERIOD",
)
ATTRIBUTES: Final = ("UNIT_MEASURE", "OBS_STATUS", "CONF_STATUS")

Freq = Literal["A", "Q", "M"]
FREQ_NAMES: Final[dict[str, str]] = {"A": "annual", "Q": "quarterly", "M": "monthly"}

Indicator = Literal[
    "ENTRY",
    "EXIT",
    "WORK_PERMIT",
    "RES_PERMIT_TEMP",
    "RES_PERMIT_PERM",
    "REFUSED_ENTRY",
    "ILLEGAL_STAY_DETECTED",
    "ORDERED_TO_LEAVE",
    "EXPELLED",
    "ENTRY_BAN_IMPOSED",
    "READMITTED",
    "ACQ_CITIZENSHIP",
]

SexCode = Literal["M", "F", "_T"]

# Persons, or a number of things (permits, decisions).
UnitMeasure = Literal["PS", "NR"]

# SDMX CL_OBS_STATUS, the codes that fit counts of persons.
ObsStatus = Literal["A", "B", "D", "E", "I", "M", "P", "U"]
MISSING: Final = "M"

# SDMX CL_CONF_STATUS: free, not for publication, confidential, secondary confidential.
ConfStatus = Literal["F", "N", "C", "D"]
SUPPRESSED: Final = frozenset({"C", "D"})

TOTAL: Final = "_T"

_NUMBER: Final = r"(?:0|[1-9][0-9]{0,2})"
AGE_PATTERN: Final = rf"^(?:_T|Y{_NUMBER}T{_NUMBER}|Y_LT{_NUMBER}|Y_GE{_NUMBER})$"
_AGE_RANGE_RE: Final = re.compile(rf"Y({_NUMBER})T({_NUMBER})")

PERIOD_PATTERN: Final = r"^(?:19|20)[0-9]{2}(?:-Q[1-4]|-(?:0[1-9]|1[0-2]))?$"
_PERIOD_SHAPES: Final[dict[str, re.Pattern[str]]] = {
    "A": re.compile(r"[0-9]{4}"),
    "Q": re.compile(r"[0-9]{4}-Q[1-4]"),
    "M": re.compile(r"[0-9]{4}-[0-9]{2}"),
}
PERIOD_EXAMPLES: Final[dict[str, str]] = {"A": "2024", "Q": "2024-Q1", "M": "2024-03"}


def period_fits(freq: str, period: str) -> bool:
    """Whether TIME_PERIOD has the shape FREQ asks for (A: 2024, Q: 2024-Q1, M: 2024-03)."""
    shape = _PERIOD_SHAPES.get(freq)
    return shape is not None and shape.fullmatch(period) is not None


def age_error(code: str) -> str | None:
    """Why an AGE code that matches AGE_PATTERN names no age group, or None."""
    match = _AGE_RANGE_RE.fullmatch(code)
    if match is not None and int(match.group(1)) > int(match.group(2)):
        return f"age group {code} runs backwards: its lower bound is above its upper bound"
    if code == "Y_LT0":
        return "age group Y_LT0 is empty"
    return None
