"""statistics.migration-flows: codelists, periods, values, duplicates, size."""

from __future__ import annotations

from typing import Any

import pytest

from service.protocol.problems import Problem
from service.records.registry import validate_body
from service.records.sdmx import age_error, period_fits
from tests.unit.records.bodies import accepted, example, refusal

TYPE = "statistics.migration-flows"


def _errors(body: dict[str, Any], **options: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in refusal(TYPE, body, **options)]


def _first(body: dict[str, Any]) -> dict[str, Any]:
    observation: dict[str, Any] = body["observations"][0]
    return observation


@pytest.mark.parametrize(
    ("freq", "period", "fits"),
    [
        ("A", "2024", True),
        ("A", "2024-Q1", False),
        ("Q", "2024-Q4", True),
        ("Q", "2024-03", False),
        ("M", "2024-03", True),
        ("M", "2024", False),
        ("W", "2024", False),
    ],
)
def test_period_shape_follows_freq(freq: str, period: str, fits: bool) -> None:
    assert period_fits(freq, period) is fits


@pytest.mark.parametrize(
    ("code", "error"),
    [("Y18T34", None), ("Y18T18", None), ("Y_LT18", None), ("Y_GE65", None), ("_T", None)],
)
def test_well_formed_age_groups_have_no_error(code: str, error: None) -> None:
    assert age_error(code) is error


def test_backward_age_group_is_an_error() -> None:
    assert age_error("Y34T18") == (
        "age group Y34T18 runs backwards: its lower bound is above its upper bound"
    )


def test_period_not_matching_freq_is_refused() -> None:
    body = example(TYPE)
    _first(body)["TIME_PERIOD"] = "2024-03"
    body["structure"]["dimensions"]["TIME_PERIOD"].append("2024-03")
    assert _errors(body) == [
        (
            "/body/observations/0/TIME_PERIOD",
            "must be a quarterly period like 2024-Q1 because FREQ is Q",
        )
    ]


@pytest.mark.parametrize("period", ["2024-Q5", "2024-13", "24", "2024-3", "1899"])
def test_malformed_period_is_refused(period: str) -> None:
    body = example(TYPE)
    _first(body)["TIME_PERIOD"] = period
    assert _errors(body) == [
        ("/body/observations/0/TIME_PERIOD", "must be a period: 2024, 2024-Q1 or 2024-03")
    ]


def test_null_value_without_status_m_is_refused() -> None:
    body = example(TYPE)
    _first(body)["OBS_VALUE"] = None
    assert _errors(body) == [
        ("/body/observations/0/OBS_VALUE", "may be null only when OBS_STATUS is M (missing)")
    ]


def test_value_with_status_m_is_refused() -> None:
    body = example(TYPE)
    _first(body)["OBS_STATUS"] = "M"
    assert _errors(body) == [
        ("/body/observations/0/OBS_VALUE", "must be null when OBS_STATUS is M (missing)")
    ]


def test_confidential_value_must_be_suppressed() -> None:
    body = example(TYPE)
    _first(body)["CONF_STATUS"] = "C"
    assert _errors(body) == [
        ("/body/observations/0/OBS_VALUE", "must be null (suppressed) when CONF_STATUS is C")
    ]


@pytest.mark.parametrize("value", [-1, 1.5, "12", True])
def test_value_must_be_a_non_negative_integer(value: Any) -> None:
    body = example(TYPE)
    _first(body)["OBS_VALUE"] = value
    assert [p for p, _ in _errors(body)] == ["/body/observations/0/OBS_VALUE"]


def test_observation_missing_a_dimension_is_refused() -> None:
    body = example(TYPE)
    del _first(body)["SEX"]
    assert _errors(body) == [("/body/observations/0/SEX", "is required")]


def test_unknown_indicator_is_refused() -> None:
    body = example(TYPE)
    _first(body)["INDICATOR"] = "OVERSTAY"
    assert [p for p, _ in _errors(body)] == ["/body/observations/0/INDICATOR"]


def test_code_not_declared_in_structure_is_refused() -> None:
    body = example(TYPE)
    _first(body)["COUNTERPART_AREA"] = "RUS"
    assert _errors(body) == [
        (
            "/body/observations/0/COUNTERPART_AREA",
            "RUS is not declared in structure/dimensions/COUNTERPART_AREA",
        )
    ]


def test_attribute_not_declared_in_structure_is_refused() -> None:
    body = example(TYPE)
    _first(body)["OBS_STATUS"] = "E"
    assert _errors(body) == [
        ("/body/observations/0/OBS_STATUS", "E is not declared in structure/attributes/OBS_STATUS")
    ]


def test_declared_area_outside_the_codelist_is_refused() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["COUNTERPART_AREA"].append("ZZZ")
    assert _errors(body) == [
        (
            "/body/structure/dimensions/COUNTERPART_AREA/3",
            "ZZZ is not a code of the COUNTERPART_AREA codelist",
        )
    ]


def test_counterpart_total_and_stateless_are_accepted() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["COUNTERPART_AREA"] += ["_T", "XXA"]
    body["observations"].append({**_first(body), "COUNTERPART_AREA": "_T"})
    body["observations"].append({**_first(body), "COUNTERPART_AREA": "XXA"})
    accepted(TYPE, body)


def test_reference_area_cannot_be_a_total() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["REF_AREA"] = ["_T"]
    assert [p for p, _ in _errors(body)] == ["/body/structure/dimensions/REF_AREA/0"]


def test_declared_backward_age_group_is_refused() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["AGE"].append("Y34T18")
    assert [p for p, _ in _errors(body)] == ["/body/structure/dimensions/AGE/1"]


def test_declared_code_listed_twice_is_refused() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["AGE"].append("_T")
    assert _errors(body) == [("/body/structure/dimensions/AGE", "must not list _T twice")]


def test_unknown_structure_definition_is_refused() -> None:
    body = example(TYPE)
    body["structure"]["dsd"] = "MIGEX:MIGRATION_FLOWS(2.0)"
    assert [p for p, _ in _errors(body)] == ["/body/structure/dsd"]


def test_duplicate_observation_key_is_refused() -> None:
    body = example(TYPE)
    body["observations"].append({**_first(body), "OBS_VALUE": 1})
    assert _errors(body) == [("/body/observations/7", "has the same dimensions as observation 0")]


def test_same_key_with_another_age_group_is_not_a_duplicate() -> None:
    body = example(TYPE)
    body["structure"]["dimensions"]["AGE"].append("Y18T34")
    body["observations"].append({**_first(body), "AGE": "Y18T34"})
    accepted(TYPE, body)


def test_more_observations_than_allowed_are_refused_before_checking_them() -> None:
    body = example(TYPE)
    body["observations"] += [{"junk": True}] * 3
    assert _errors(body, max_observations=9) == [
        ("/body/observations", "must have at most 9 observations (has 10)")
    ]


def test_observation_limit_is_inclusive() -> None:
    assert refusal(TYPE, example(TYPE), max_observations=6)
    validate_body(TYPE, example(TYPE), max_observations=7)


def test_empty_dataset_is_refused() -> None:
    body = example(TYPE)
    body["observations"] = []
    assert _errors(body) == [("/body/observations", "must have at least 1 item")]


def _large_dataset(size: int) -> dict[str, Any]:
    body = example(TYPE)
    periods = [f"{year}-{month:02d}" for year in range(2000, 2025) for month in range(1, 13)]
    areas = ["UZB", "TJK", "KGZ", "RUS", "CHN", "TUR", "AZE", "ARM", "GEO", "BLR"]
    ages = ["_T", "Y0T17", "Y18T34", "Y35T64", "Y_GE65"]
    indicators = ["ENTRY", "EXIT", "WORK_PERMIT", "EXPELLED"]
    dims = body["structure"]["dimensions"]
    dims.update(FREQ=["M"], COUNTERPART_AREA=areas, AGE=ages, TIME_PERIOD=periods, SEX=["M", "F"])
    dims["INDICATOR"] = indicators
    observations = [
        {
            "FREQ": "M", "REF_AREA": "KAZ", "COUNTERPART_AREA": area, "INDICATOR": indicator,
            "SEX": sex, "AGE": age, "TIME_PERIOD": period, "OBS_VALUE": 17,
            "UNIT_MEASURE": "PS", "OBS_STATUS": "A", "CONF_STATUS": "F",
        }
        for period in periods for area in areas for indicator in indicators
        for sex in ("M", "F") for age in ages
    ]  # fmt: skip
    body["observations"] = observations[:size]
    return body


def test_hundred_thousand_observations_validate() -> None:
    # How long it takes is a figure for the benchmarks, not a test's assertion: a timed
    # test fails on a busy machine without the code being any slower.
    body = _large_dataset(100_000)
    assert len(body["observations"]) == 100_000
    accepted(TYPE, body)


def test_refusal_lists_at_most_a_thousand_errors_and_counts_the_rest() -> None:
    body = _large_dataset(1500)
    for observation in body["observations"]:
        observation["OBS_VALUE"] = -1
    with pytest.raises(Problem) as caught:
        validate_body(TYPE, body)
    assert caught.value.detail == f"body invalid for {TYPE}: 1500 errors"
    assert len(caught.value.extra["errors"]) == 1000
    assert caught.value.extra["errors_omitted"] == 500
