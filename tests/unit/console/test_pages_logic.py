"""Pure parts of the console pages: chart geometry, key ages, agreement states, filters."""

from __future__ import annotations

from datetime import date

import pytest

from service.console import charts
from service.console.auditor import search_filter
from service.console.operator import agreement_state, key_age
from service.console.web import safe_next


def test_the_longest_bar_fills_a_round_axis() -> None:
    chart = charts.horizontal([("a", 70), ("b", 35)])
    assert chart.axis_max == 100
    assert chart.bars[0].width == pytest.approx(2 * chart.bars[1].width)


@pytest.mark.parametrize(
    ("value", "axis"), [(0, 1), (1, 1), (7, 10), (11, 20), (150, 200), (501, 1000)]
)
def test_axes_end_on_one_two_or_five(value: int, axis: int) -> None:
    assert charts.nice_max(value) == axis


def test_stacked_columns_stack_series_within_a_day() -> None:
    chart = charts.stacked_columns(
        ["d1", "d2"], ["UZ ←", "UZ →"], {("d1", "UZ ←"): 2, ("d1", "UZ →"): 3, ("d2", "UZ ←"): 5}
    )
    d1 = [b for b in chart.bars if b.label.startswith("d1")]
    assert len(d1) == 2
    assert d1[0].y == pytest.approx(d1[1].y + d1[1].height)
    assert chart.axis_max == 5


@pytest.mark.parametrize(
    ("today", "warning"),
    [(date(2026, 10, 1), None), (date(2026, 12, 15), "soon"), (date(2027, 1, 1), "overdue")],
)
def test_a_key_warns_before_its_rotation_period_ends(today: date, warning: str | None) -> None:
    since, rotate_by, warn = key_age("KZ:MIA#2026-01", today, 365, 30)
    assert since == date(2026, 1, 1)
    assert rotate_by == date(2027, 1, 1)
    assert warn == warning


def test_a_kid_without_a_date_has_no_age() -> None:
    assert key_age("KZ:MIA#main", date(2030, 1, 1), 365, 30) == (None, None, None)


@pytest.mark.parametrize(
    ("in_force", "ends", "state"),
    [
        (None, None, "pending"),
        (date(2027, 7, 1), None, "not-yet"),
        (date(2020, 5, 22), None, "in-force"),
        (date(2020, 5, 22), date(2026, 1, 1), "ended"),
    ],
)
def test_agreement_states(in_force: date | None, ends: date | None, state: str) -> None:
    assert agreement_state(in_force, ends, date(2026, 11, 18)) == state


def test_search_filters_use_the_api_patterns() -> None:
    flt, bad = search_filter({"party": "UZ:MIA", "type": "Bad Type", "since": "2026-11-18"})
    assert bad == ["type"]
    assert flt.party == "UZ:MIA"
    assert flt.since == 1_794_960_000  # 2026-11-18T00:00:00Z


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("/console/log?party=UZ:MIA", "/console/log?party=UZ:MIA"),
        ("//evil.example/", "/console/overview"),
        ("https://evil.example/", "/console/overview"),
        ("/console/\\evil", "/console/overview"),
        ("/console//evil.example", "/console/overview"),
        (None, "/console/overview"),
    ],
)
def test_redirects_stay_in_the_console(value: str | None, target: str) -> None:
    assert safe_next(value, "auditor") == target
