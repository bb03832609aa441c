"""check_agreement: the agreement step of the inbound checks, each failure named."""

from __future__ import annotations

from datetime import date

import pytest

from service.partners.agreements import Agreement, check_agreement, country_of
from service.protocol.problems import Problem

AGREEMENTS = {
    a.id: a
    for a in (
        Agreement(
            id="kz-uz-2019",
            title="Kazakhstan and Uzbekistan",
            parties=frozenset({"KZ", "UZ"}),
            signed=date(2019, 4, 15),
            in_force=date(2020, 5, 22),
            ends=None,
            covers=frozenset({("statistics.migration-flows", "statistics")}),
        ),
        Agreement(
            id="kz-kg-2019",
            title="Kazakhstan and Kyrgyzstan",
            parties=frozenset({"KZ", "KG"}),
            signed=date(2019, 11, 27),
            in_force=date(2027, 1, 1),
            ends=None,
            covers=frozenset({("statistics.migration-flows", "statistics")}),
        ),
        Agreement(
            id="kz-tj-draft",
            title="Draft, never in force",
            parties=frozenset({"KZ", "TJ"}),
            signed=date(2024, 1, 1),
            in_force=None,
            ends=None,
            covers=frozenset({("statistics.migration-flows", "statistics")}),
        ),
        Agreement(
            id="kz-tj-old",
            title="Ended",
            parties=frozenset({"KZ", "TJ"}),
            signed=date(2000, 1, 1),
            in_force=date(2000, 6, 1),
            ends=date(2018, 1, 1),
            covers=frozenset({("statistics.migration-flows", "statistics")}),
        ),
    )
}


def check(
    agreement_id: str = "kz-uz-2019",
    *,
    iss: str = "UZ:MIA",
    aud: str = "KZ:MIA",
    msg_type: str = "statistics.migration-flows",
    purpose: str = "statistics",
    on: date = date(2026, 11, 24),
) -> Agreement:
    return check_agreement(
        AGREEMENTS,
        agreement_id=agreement_id,
        iss=iss,
        aud=aud,
        msg_type=msg_type,
        purpose=purpose,
        on=on,
    )


def refusal(agreement_id: str = "kz-uz-2019", **kwargs: object) -> str:
    with pytest.raises(Problem) as info:
        check(agreement_id, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == "agreement"
    return info.value.detail


def test_agreement_in_force_binding_and_covering_is_returned() -> None:
    assert check().id == "kz-uz-2019"


def test_unknown_agreement_is_refused() -> None:
    assert refusal("kz-uz-2091") == "agreement 'kz-uz-2091' is not known to this node"


def test_agreement_not_binding_the_sender_is_refused() -> None:
    assert refusal(iss="KG:SRS") == "agreement kz-uz-2019 does not bind KG (it binds KZ, UZ)"


def test_agreement_not_binding_either_party_names_both() -> None:
    detail = refusal(iss="KG:SRS", aud="TJ:MIA")
    assert detail == "agreement kz-uz-2019 does not bind KG or TJ (it binds KZ, UZ)"


def test_agreement_not_yet_in_force_names_its_date() -> None:
    detail = refusal("kz-kg-2019", iss="KG:SRS")
    assert (
        detail
        == "agreement kz-kg-2019 is not in force on 2026-11-24 (enters into force 2027-01-01)"
    )


def test_agreement_is_in_force_from_its_first_day() -> None:
    assert check("kz-kg-2019", iss="KG:SRS", on=date(2027, 1, 1)).id == "kz-kg-2019"


def test_agreement_without_entry_into_force_is_refused() -> None:
    detail = refusal("kz-tj-draft", iss="TJ:MIA")
    assert detail == (
        "agreement kz-tj-draft is not in force on 2026-11-24 (no date of entry into force is configured)"
    )


def test_ended_agreement_is_refused_from_its_end_date() -> None:
    detail = refusal("kz-tj-old", iss="TJ:MIA", on=date(2018, 1, 1))
    assert detail == "agreement kz-tj-old is not in force on 2018-01-01 (ended 2018-01-01)"


def test_agreement_applies_on_the_day_before_it_ends() -> None:
    assert check("kz-tj-old", iss="TJ:MIA", on=date(2017, 12, 31)).id == "kz-tj-old"


def test_type_not_covered_is_refused() -> None:
    detail = refusal(msg_type="readmission.request")
    assert (
        detail == "agreement kz-uz-2019 does not cover readmission.request for purpose 'statistics'"
    )


def test_purpose_not_covered_is_refused() -> None:
    detail = refusal(purpose="readmission")
    assert (
        detail
        == "agreement kz-uz-2019 does not cover statistics.migration-flows for purpose 'readmission'"
    )


def test_binding_is_checked_before_dates() -> None:
    assert "does not bind" in refusal("kz-kg-2019", iss="UZ:MIA")


def test_country_of_a_party_is_its_prefix() -> None:
    assert country_of("KZ:BNS") == "KZ"
