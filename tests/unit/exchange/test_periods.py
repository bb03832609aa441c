"""Retention periods by category and agreement: which period applies, and rules that
cover every message once."""

from __future__ import annotations

import pytest

from service.exchange.periods import CATEGORIES, DAY, AgreementPeriods, RetentionPolicy

POLICY = RetentionPolicy(
    default_days=365,
    categories={"statistics": 1825, "violation-notices": 730},
    agreements={
        "kz-uz-2019": AgreementPeriods(days=100, categories={"statistics": 50}),
        "kz-kg-2019": AgreementPeriods(categories={"readmission-cases": 3650}),
    },
)


@pytest.mark.parametrize(
    ("category", "agreement", "days"),
    [
        ("statistics", None, 1825),  # the category's period
        ("citizenship-checks", None, 365),  # the node's default
        ("statistics", "kz-uz-2019", 50),  # the agreement's period for the category
        ("violation-notices", "kz-uz-2019", 100),  # the agreement's period for all
        ("violation-notices", "kz-kg-2019", 730),  # the agreement says nothing of it
        ("readmission-cases", "kz-kg-2019", 3650),
        ("other", "kz-tj-2020", 365),  # an agreement with nothing configured
    ],
)
def test_the_most_specific_period_applies(category: str, agreement: str | None, days: int) -> None:
    assert POLICY.days_for(category, agreement) == days


def test_each_category_has_a_rule_for_other_agreements_and_one_per_overriding_agreement() -> None:
    rules = {(r.category, r.agreement): r for r in POLICY.rules()}
    assert rules["statistics", None].excluded == ("kz-uz-2019",)
    assert rules["readmission-cases", None].excluded == ("kz-kg-2019", "kz-uz-2019")
    assert rules["citizenship-checks", None].excluded == ("kz-uz-2019",)
    assert rules["citizenship-checks", "kz-uz-2019"].days == 100
    assert ("citizenship-checks", "kz-kg-2019") not in rules
    assert rules["other", None].types is None
    assert rules["readmission-cases", None].types == CATEGORIES["readmission-cases"]


def test_a_rule_cutoff_is_its_period_before_now() -> None:
    rule = next(r for r in POLICY.rules() if r.category == "statistics" and r.agreement is None)
    assert rule.cutoff(10_000 * DAY) == (10_000 - 1825) * DAY


def test_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown retention categories: attachments"):
        RetentionPolicy(365, categories={"attachments": 30})
