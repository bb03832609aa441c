"""The SDMX-CSV download, read back with sdmx1 as a statistician's tool reads it."""

from __future__ import annotations

import io
from typing import Any

from sdmx.model import common, v30
from sdmx.reader.csv import Reader

from service.console.sdmxcsv import indicator_table, sdmx_csv
from service.records import sdmx as codes
from tests.support.nodes import example_body


def structure() -> v30.DataStructureDefinition:
    dsd = v30.DataStructureDefinition(id="MIGRATION_FLOWS", maintainer=common.Agency(id="MIGEX"))
    for name in codes.DIMENSIONS:
        if name == "TIME_PERIOD":
            dsd.dimensions.getdefault(name, cls=common.TimeDimension)
        else:
            dsd.dimensions.getdefault(name)
    dsd.measures.getdefault("OBS_VALUE")
    for name in codes.ATTRIBUTES:
        dsd.attributes.getdefault(name)
    return dsd


def read(text: str) -> Any:
    return Reader().convert(io.BytesIO(text.encode()), structure=structure())


def test_the_download_reads_back_with_every_observation() -> None:
    body = example_body("statistics.migration-flows")
    message = read(sdmx_csv(body))
    [dataset] = message.data
    assert len(dataset.obs) == len(body["observations"])
    read_back = {
        tuple(str(kv.value) for kv in obs.dimension.values.values()): obs.value
        for obs in dataset.obs
    }
    for obs in body["observations"]:
        key = tuple(obs[name] for name in codes.DIMENSIONS)
        expected = obs["OBS_VALUE"]
        assert read_back[key] == ("" if expected is None else str(expected)), key


def test_attributes_travel_with_each_observation() -> None:
    body = example_body("statistics.migration-flows")
    [dataset] = read(sdmx_csv(body)).data
    first = dataset.obs[0]
    attrs = {k: str(v.value) for k, v in first.attached_attribute.items()}
    for name in codes.ATTRIBUTES:
        assert attrs[name] == body["observations"][0][name]


def test_a_suppressed_value_is_an_empty_cell() -> None:
    body = {
        "observations": [
            {
                "FREQ": "A",
                "REF_AREA": "KAZ",
                "COUNTERPART_AREA": "UZB",
                "INDICATOR": "ENTRY",
                "SEX": "_T",
                "AGE": "_T",
                "TIME_PERIOD": "2024",
                "OBS_VALUE": None,
                "UNIT_MEASURE": "PS",
                "OBS_STATUS": "A",
                "CONF_STATUS": "C",
            }
        ]
    }
    line = sdmx_csv(body).splitlines()[1]
    assert ",2024,,PS,A,C" in line


def test_the_table_takes_totals_or_men_plus_women_never_both() -> None:
    base = {
        "FREQ": "A",
        "REF_AREA": "KAZ",
        "COUNTERPART_AREA": "UZB",
        "INDICATOR": "ENTRY",
        "AGE": "_T",
        "TIME_PERIOD": "2024",
        "UNIT_MEASURE": "PS",
        "OBS_STATUS": "A",
        "CONF_STATUS": "F",
    }
    body = {
        "observations": [
            {**base, "SEX": "M", "OBS_VALUE": 3},
            {**base, "SEX": "F", "OBS_VALUE": 4},
            {**base, "INDICATOR": "EXIT", "SEX": "_T", "OBS_VALUE": 10},
            {**base, "INDICATOR": "EXIT", "SEX": "M", "OBS_VALUE": 6},
            {**base, "INDICATOR": "EXPELLED", "SEX": "M", "OBS_VALUE": 1},
        ]
    }
    periods, rows, cells = indicator_table(body)
    assert periods == ["2024"]
    assert rows == [("ENTRY", "KAZ", "UZB"), ("EXIT", "KAZ", "UZB")]
    assert cells[("ENTRY", "KAZ", "UZB", "2024")] == 7
    assert cells[("EXIT", "KAZ", "UZB", "2024")] == 10
