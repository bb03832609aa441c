"""A migration-flows dataset as SDMX-CSV 2.0.0, the form statistics offices load into
their SDMX tools: one row per observation, led by the structure it follows
(`datastructure`, `MIGEX:MIGRATION_FLOWS(1.0)`, docs/records.md) and the action `I`
(information). Pure: a body in, text out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from service.records import sdmx

STRUCTURE = "datastructure"
STRUCTURE_ID = "MIGEX:MIGRATION_FLOWS(1.0)"
ACTION = "I"
COLUMNS = ("STRUCTURE", "STRUCTURE_ID", "ACTION", *sdmx.DIMENSIONS, "OBS_VALUE", *sdmx.ATTRIBUTES)
MEDIA_TYPE = "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8"


def sdmx_csv(body: Mapping[str, Any]) -> str:
    """One line per observation; a suppressed or missing value is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for obs in body.get("observations", ()):
        value = obs.get("OBS_VALUE")
        writer.writerow(
            (
                STRUCTURE,
                STRUCTURE_ID,
                ACTION,
                *(obs.get(name, "") for name in sdmx.DIMENSIONS),
                "" if value is None else value,
                *(obs.get(name, "") for name in sdmx.ATTRIBUTES),
            )
        )
    return out.getvalue()


Table = tuple[list[str], list[tuple[str, str, str]], dict[tuple[str, str, str, str], int]]


def indicator_table(body: Mapping[str, Any]) -> Table:
    """Persons (or permits) by indicator and country pair, per period: the observation
    for all sexes and ages (`_T`, `_T`), else men plus women of all ages when both are
    given; anything else would count someone twice or not at all, and is left out."""
    parts: dict[tuple[str, str, str, str], dict[tuple[str, str], int]] = {}
    for obs in body.get("observations", ()):
        value = obs.get("OBS_VALUE")
        if value is None:
            continue
        key = (obs["INDICATOR"], obs["REF_AREA"], obs["COUNTERPART_AREA"], obs["TIME_PERIOD"])
        parts.setdefault(key, {})[(obs["SEX"], obs["AGE"])] = int(value)
    cells: dict[tuple[str, str, str, str], int] = {}
    for key, by in parts.items():
        total = by.get((sdmx.TOTAL, sdmx.TOTAL))
        if total is None and ("M", sdmx.TOTAL) in by and ("F", sdmx.TOTAL) in by:
            total = by[("M", sdmx.TOTAL)] + by[("F", sdmx.TOTAL)]
        if total is not None:
            cells[key] = total
    periods = sorted({k[3] for k in cells})
    rows = sorted({k[:3] for k in cells})
    return periods, rows, cells
