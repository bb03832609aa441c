"""The rule engine: agreement check then access rule, default deny, every decision named."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest

from service.config import ConfigError, load_config
from service.partners.agreements import Agreement, check_agreement
from service.partners.fields import filter_fields
from service.partners.registry import Partner, PartnerRegistry
from service.partners.rules import Decision, Direction, Rule, decide
from service.protocol.problems import Problem
from tests.unit.config.configfiles import make_config_dir, replace_once

STATS = "statistics.migration-flows"
RESPONSE = "citizenship.verification-response"
TODAY = date(2026, 11, 24)


def _agreement(
    id_: str, parties: set[str], in_force: date | None, ends: date | None = None
) -> Agreement:
    return Agreement(
        id=id_,
        title=id_,
        parties=frozenset(parties),
        signed=date(2019, 1, 1),
        in_force=in_force,
        ends=ends,
        covers=frozenset({(STATS, "statistics"), (RESPONSE, "identity-verification")}),
    )


def _partner(party: str, *rules: Rule) -> Partner:
    return Partner(party, party, "http://127.0.0.1:9", MappingProxyType({}), 1.0, 1, rules)


REGISTRY = PartnerRegistry(
    [
        _partner(
            "UZ:MIA",
            Rule(
                "uz-in-statistics",
                "inbound",
                frozenset({STATS}),
                frozenset({"kz-uz-2019", "kz-uz-old"}),
                frozenset({"statistics"}),
            ),
            Rule(
                "uz-out-verification-response",
                "outbound",
                frozenset({RESPONSE}),
                frozenset({"kz-uz-2019"}),
                frozenset({"identity-verification"}),
                ("result", "person.names"),
            ),
        ),
        _partner(
            "KG:SRS",
            Rule(
                "kg-in-statistics",
                "inbound",
                frozenset({STATS}),
                frozenset({"kz-kg-2019"}),
                frozenset({"statistics"}),
            ),
        ),
        _partner("TJ:MIA"),
    ],
    {
        a.id: a
        for a in (
            _agreement("kz-uz-2019", {"KZ", "UZ"}, date(2020, 5, 22)),
            _agreement("kz-uz-old", {"KZ", "UZ"}, date(2001, 1, 1), ends=date(2020, 5, 22)),
            _agreement("kz-kg-2019", {"KZ", "KG"}, date(2027, 7, 1)),
            _agreement("kz-tj-2018", {"KZ", "TJ"}, date(2019, 2, 22)),
        )
    },
)


def evaluate(
    party: str, direction: Direction, msg_type: str, agreement: str, purpose: str, on: date = TODAY
) -> str:
    """What the node decides: the rule id, or "<code>: <detail>"."""
    iss, aud = (party, "KZ:MIA") if direction == "inbound" else ("KZ:MIA", party)
    try:
        check_agreement(
            REGISTRY.agreements,
            agreement_id=agreement,
            iss=iss,
            aud=aud,
            msg_type=msg_type,
            purpose=purpose,
            on=on,
        )
        decision = decide(
            REGISTRY.partner(party),
            direction=direction,
            msg_type=msg_type,
            agreement=agreement,
            purpose=purpose,
        )
    except Problem as problem:
        return f"{problem.code}: {problem.detail}"
    return decision.rule_id


@pytest.mark.parametrize(
    ("party", "direction", "msg_type", "agreement", "purpose", "on", "expected"),
    [
        pytest.param(
            "UZ:MIA",
            "inbound",
            STATS,
            "kz-uz-2019",
            "statistics",
            TODAY,
            "uz-in-statistics",
            id="allowed-inbound",
        ),
        pytest.param(
            "UZ:MIA",
            "outbound",
            RESPONSE,
            "kz-uz-2019",
            "identity-verification",
            TODAY,
            "uz-out-verification-response",
            id="allowed-outbound",
        ),
        pytest.param(
            "UZ:MIA",
            "outbound",
            STATS,
            "kz-uz-2019",
            "statistics",
            TODAY,
            "forbidden: no access rule of partner UZ:MIA allows outbound statistics.migration-flows under kz-uz-2019 for purpose 'statistics'",
            id="denied-other-direction",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            RESPONSE,
            "kz-uz-2019",
            "identity-verification",
            TODAY,
            "forbidden: no access rule of partner UZ:MIA allows inbound citizenship.verification-response under kz-uz-2019 for purpose 'identity-verification'",
            id="denied-no-rule",
        ),
        pytest.param(
            "TJ:MIA",
            "inbound",
            STATS,
            "kz-tj-2018",
            "statistics",
            TODAY,
            "forbidden: no access rule of partner TJ:MIA allows inbound statistics.migration-flows under kz-tj-2018 for purpose 'statistics'",
            id="denied-partner-without-rules",
        ),
        pytest.param(
            "KG:SRS",
            "inbound",
            STATS,
            "kz-kg-2019",
            "statistics",
            TODAY,
            "agreement: agreement kz-kg-2019 is not in force on 2026-11-24 (enters into force 2027-07-01)",
            id="agreement-not-yet-in-force-on-iat-date",
        ),
        pytest.param(
            "KG:SRS",
            "inbound",
            STATS,
            "kz-kg-2019",
            "statistics",
            date(2027, 7, 1),
            "kg-in-statistics",
            id="allowed-once-in-force",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            STATS,
            "kz-uz-old",
            "statistics",
            TODAY,
            "agreement: agreement kz-uz-old is not in force on 2026-11-24 (ended 2020-05-22)",
            id="agreement-ended",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            STATS,
            "kz-uz-old",
            "statistics",
            date(2020, 5, 21),
            "uz-in-statistics",
            id="allowed-before-end",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            STATS,
            "kz-kg-2019",
            "statistics",
            TODAY,
            "agreement: agreement kz-kg-2019 does not bind UZ (it binds KG, KZ)",
            id="agreement-not-binding",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            "readmission.request",
            "kz-uz-2019",
            "statistics",
            TODAY,
            "agreement: agreement kz-uz-2019 does not cover readmission.request for purpose 'statistics'",
            id="type-not-covered",
        ),
        pytest.param(
            "UZ:MIA",
            "inbound",
            STATS,
            "kz-uz-2019",
            "identity-verification",
            TODAY,
            "agreement: agreement kz-uz-2019 does not cover statistics.migration-flows for purpose 'identity-verification'",
            id="purpose-not-covered",
        ),
        pytest.param(
            "RU:MVD",
            "inbound",
            STATS,
            "kz-uz-2019",
            "statistics",
            TODAY,
            "agreement: agreement kz-uz-2019 does not bind RU (it binds KZ, UZ)",
            id="unknown-party-fails-the-agreement",
        ),
    ],
)
def test_rule_engine_table(
    party: str,
    direction: Direction,
    msg_type: str,
    agreement: str,
    purpose: str,
    on: date,
    expected: str,
) -> None:
    assert evaluate(party, direction, msg_type, agreement, purpose, on) == expected


def test_outbound_decision_filters_fields_and_records_removed_paths() -> None:
    decision = decide(
        REGISTRY.partner("UZ:MIA"),
        direction="outbound",
        msg_type=RESPONSE,
        agreement="kz-uz-2019",
        purpose="identity-verification",
    )
    assert decision == Decision("uz-out-verification-response", ("result", "person.names"))
    assert decision.fields is not None
    body = {
        "result": "confirmed",
        "person": {"names": {"latin": "ERIKSSON"}, "birth_date": "1974-08-12"},
    }
    assert filter_fields(body, decision.fields) == (
        {"result": "confirmed", "person": {"names": {"latin": "ERIKSSON"}}},
        ["person.birth_date"],
    )


def test_inbound_decision_carries_no_fields() -> None:
    decision = decide(
        REGISTRY.partner("UZ:MIA"),
        direction="inbound",
        msg_type=STATS,
        agreement="kz-uz-2019",
        purpose="statistics",
    )
    assert decision == Decision("uz-in-statistics", None)


def test_no_partner_is_forbidden_with_no_rule_named() -> None:
    with pytest.raises(Problem) as info:
        decide(
            None, direction="inbound", msg_type=STATS, agreement="kz-uz-2019", purpose="statistics"
        )
    assert info.value.code == "forbidden"
    assert info.value.extra == {"rule": None}
    assert "not a configured partner" in info.value.detail


def test_refusal_names_no_rule() -> None:
    with pytest.raises(Problem) as info:
        decide(
            REGISTRY.partner("TJ:MIA"),
            direction="inbound",
            msg_type=STATS,
            agreement="kz-tj-2018",
            purpose="statistics",
        )
    assert info.value.extra == {"rule": None}


def test_overlapping_rules_fail_closed_when_built_without_the_loader() -> None:
    rule = Rule(
        "a", "inbound", frozenset({STATS}), frozenset({"kz-uz-2019"}), frozenset({"statistics"})
    )
    partner = _partner(
        "UZ:MIA", rule, Rule("b", "inbound", rule.types, rule.agreements, rule.purposes)
    )
    with pytest.raises(Problem) as info:
        decide(
            partner,
            direction="inbound",
            msg_type=STATS,
            agreement="kz-uz-2019",
            purpose="statistics",
        )
    assert info.value.code == "forbidden"
    assert "rules a and b of partner UZ:MIA overlap" in info.value.detail


def test_overlapping_rules_are_refused_at_load(tmp_path: Path) -> None:
    cdir = make_config_dir(tmp_path)
    extra = (
        "      - id: uz-in-all\n"
        "        direction: inbound\n"
        "        types: [statistics.migration-flows]\n"
        "        agreements: [kz-uz-2019]\n"
        "        purposes: [statistics]\n"
    )
    text = replace_once(
        cdir.base_text(),
        "      - id: uz-out-verification-response\n",
        extra + "      - id: uz-out-verification-response\n",
    )
    with pytest.raises(ConfigError, match="overlapping rules uz-in-statistics and uz-in-all"):
        load_config(cdir.write(text), env={})


def test_outbound_rule_needs_fields() -> None:
    with pytest.raises(ValueError, match="must list the fields"):
        Rule("r", "outbound", frozenset({STATS}), frozenset({"a"}), frozenset({"statistics"}))


def test_outbound_rule_with_empty_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="must list the fields"):
        Rule("r", "outbound", frozenset({STATS}), frozenset({"a"}), frozenset({"statistics"}), ())


def test_inbound_rule_with_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="outbound rules only"):
        Rule(
            "r", "inbound", frozenset({STATS}), frozenset({"a"}), frozenset({"statistics"}), ("*",)
        )


def test_rule_with_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="inbound or outbound"):
        Rule("r", "sideways", frozenset({STATS}), frozenset({"a"}), frozenset({"statistics"}))  # type: ignore[arg-type]
