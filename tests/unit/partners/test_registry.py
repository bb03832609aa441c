"""The partner registry: key lookup with revocation and algorithm allow-lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import load_config
from service.config.build import registry_from_config
from service.partners.registry import PartnerRegistry
from service.protocol.problems import Problem
from tests.unit.config.configfiles import ConfigDir, make_config_dir, replace_once


@pytest.fixture
def cdir(tmp_path: Path) -> ConfigDir:
    return make_config_dir(tmp_path)


def registry(cdir: ConfigDir, text: str | None = None) -> PartnerRegistry:
    return registry_from_config(load_config(cdir.write(text or cdir.base_text()), env={}))


def problem(reg: PartnerRegistry, kid: str, alg: str) -> Problem:
    with pytest.raises(Problem) as info:
        reg.key_for(kid, alg)
    return info.value


def test_key_for_returns_the_owning_partner_and_key(cdir: ConfigDir) -> None:
    partner, key = registry(cdir).key_for("UZ:MIA#2026-01", "Ed25519")
    assert partner.party == "UZ:MIA"
    assert key.public.kind == "ed25519"
    assert key.algs == frozenset({"Ed25519", "EdDSA"})


def test_unknown_kid_is_unknown_key(cdir: ConfigDir) -> None:
    found = problem(registry(cdir), "UZ:MIA#2099-01", "Ed25519")
    assert (found.code, found.detail) == (
        "unknown-key",
        "key 'UZ:MIA#2099-01' is not pinned for any partner",
    )


def test_revoked_key_is_unknown_key(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), "algs: [Ed25519, EdDSA]", "algs: [Ed25519, EdDSA]\n        revoked: true"
    )
    found = problem(registry(cdir, text), "UZ:MIA#2026-01", "Ed25519")
    assert (found.code, found.detail) == ("unknown-key", "key UZ:MIA#2026-01 of UZ:MIA is revoked")


def test_key_with_revoked_at_is_revoked(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "algs: [Ed25519, EdDSA]",
        "algs: [Ed25519, EdDSA]\n        revoked_at: 2026-05-01",
    )
    assert problem(registry(cdir, text), "UZ:MIA#2026-01", "EdDSA").code == "unknown-key"


def test_alg_outside_the_allow_list_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "algs: [Ed25519, EdDSA]", "algs: [Ed25519]")
    found = problem(registry(cdir, text), "UZ:MIA#2026-01", "EdDSA")
    assert (found.code, found.detail) == (
        "alg-not-allowed",
        "algorithm 'EdDSA' is not allowed for key UZ:MIA#2026-01 (allowed: Ed25519)",
    )


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", ""])
def test_algorithms_the_key_cannot_use_are_refused(cdir: ConfigDir, alg: str) -> None:
    assert problem(registry(cdir), "UZ:MIA#2026-01", alg).code == "alg-not-allowed"


def test_omitted_algs_default_to_what_the_key_type_permits(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "        algs: [ES256]\n", "")
    _, key = registry(cdir, text).key_for("KG:SRS#2026-01", "ES256")
    assert key.algs == frozenset({"ES256"})


def test_partner_carries_rate_limit_endpoint_and_rules(cdir: ConfigDir) -> None:
    partner = registry(cdir).partner("UZ:MIA")
    assert partner is not None
    assert (partner.rate_per_second, partner.rate_burst) == (5.0, 10)
    assert partner.endpoint == "http://127.0.0.1:8001"
    assert [r.id for r in partner.rules] == ["uz-in-statistics", "uz-out-verification-response"]
    assert partner.rules[1].fields == ("result", "person.names")


def test_default_rate_limit_applies_when_omitted(cdir: ConfigDir) -> None:
    partner = registry(cdir).partner("KG:SRS")
    assert partner is not None
    assert (partner.rate_per_second, partner.rate_burst) == (10.0, 20)


def test_unknown_party_has_no_partner(cdir: ConfigDir) -> None:
    assert registry(cdir).partner("TJ:MIA") is None


def test_agreements_are_built_with_their_coverage(cdir: ConfigDir) -> None:
    agreement = registry(cdir).agreements["kz-uz-2019"]
    assert agreement.parties == frozenset({"KZ", "UZ"})
    assert ("citizenship.verification-response", "identity-verification") in agreement.covers


def test_partners_lists_every_partner(cdir: ConfigDir) -> None:
    assert [p.party for p in registry(cdir).partners()] == ["UZ:MIA", "KG:SRS"]


def test_kid_pinned_for_two_partners_is_refused(cdir: ConfigDir) -> None:
    reg = registry(cdir)
    uz, kg = reg.partner("UZ:MIA"), reg.partner("KG:SRS")
    assert uz is not None
    assert kg is not None
    clash = type(kg)(kg.party, kg.name, kg.endpoint, uz.keys, 1.0, 1, ())
    with pytest.raises(ValueError, match="pinned for more than one partner"):
        PartnerRegistry([uz, clash], reg.agreements)
