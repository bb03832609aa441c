"""Loading the operator's YAML: validation, cross-checks, and the line of every problem."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pytest

from service.config import ConfigError, Settings, load_config, render_sample_config
from service.partners.agreements import check_agreement
from service.partners.registry import PartnerRegistry
from service.partners.tokens import TokenStore
from service.protocol.keys import PublicKey, generate_private_key, write_private_key
from service.protocol.problems import Problem
from tests.unit.partners.configfiles import ConfigDir, line_of, make_config_dir, replace_once

DOCKER_CONFIGS = Path(__file__).resolve().parents[2] / "docker" / "config"
FEDERATION = {"kz": "KZ:MIA", "kg": "KG:SRS", "uz": "UZ:MIA", "tj": "TJ:MIA"}


@pytest.fixture
def cdir(tmp_path: Path) -> ConfigDir:
    return make_config_dir(tmp_path)


def refused(path: Path, *, check_key_files: bool = True, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {}, check_key_files=check_key_files)
    return str(info.value)


def assert_problem(message: str, path: Path, line: int, where: str, text: str) -> None:
    expected = f"{path}:{line}: {where}: "
    found = [m for m in message.splitlines() if m.startswith(expected)]
    assert found, f"no problem at {expected!r} in:\n{message}"
    assert any(text in m for m in found), f"{text!r} not in {found}"


# -- files that load -------------------------------------------------------------


def test_base_config_loads_with_all_sections_defaulted(cdir: ConfigDir) -> None:
    cfg = load_config(cdir.write(cdir.base_text()), env={})
    assert cfg.party == "KZ:MIA"
    assert cfg.limits.max_message_bytes == 1_048_576
    assert cfg.limits.clock_skew_seconds == 300
    assert cfg.delivery.max_attempts == 10
    assert cfg.retention.message_body_days == 365
    assert cfg.listen.port == 8000
    assert cfg.effective_published_kids == ("KZ:MIA#2026-01",)


def test_relative_paths_resolve_against_the_file_directory(cdir: ConfigDir) -> None:
    cfg = load_config(cdir.write(cdir.base_text()), env={})
    assert cfg.node.signing_keys[0].file == cdir.root / "kz.pem"
    kg_key = cfg.partners[1].keys[0]
    assert kg_key.jwk_file == cdir.root / "public" / "kg.jwk.json"
    assert kg_key.jwk == cdir.kg_jwk


def test_endpoint_loses_its_trailing_slash(cdir: ConfigDir) -> None:
    cfg = load_config(cdir.write(cdir.base_text()), env={})
    assert cfg.partners[0].endpoint == "http://127.0.0.1:8001"


def test_env_database_url_overrides_the_file(cdir: ConfigDir) -> None:
    env = {"MIGEX_DATABASE_URL": "postgresql+psycopg://migex@db/migex"}
    cfg = load_config(cdir.write(cdir.base_text()), env=env)
    assert cfg.database_url == "postgresql+psycopg://migex@db/migex"


def test_env_database_url_supplies_a_missing_database_url(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), 'database_url: "sqlite:///var/kz/migex.db"\n', "")
    cfg = load_config(cdir.write(text), env={"MIGEX_DATABASE_URL": "sqlite:///x.db"})
    assert cfg.database_url == "sqlite:///x.db"


def test_env_public_keys_dir_replaces_the_jwk_file_directory(cdir: ConfigDir) -> None:
    other = cdir.root / "elsewhere"
    other.mkdir()
    (cdir.root / "public" / "kg.jwk.json").rename(other / "kg.jwk.json")
    cfg = load_config(cdir.write(cdir.base_text()), env={"MIGEX_PUBLIC_KEYS_DIR": str(other)})
    assert cfg.partners[1].keys[0].jwk_file == other / "kg.jwk.json"


def test_env_secrets_dir_replaces_the_signing_key_directory(cdir: ConfigDir) -> None:
    secrets = cdir.root / "secrets"
    secrets.mkdir()
    (cdir.root / "kz.pem").rename(secrets / "kz.pem")
    cfg = load_config(cdir.write(cdir.base_text()), env={"MIGEX_SECRETS_DIR": str(secrets)})
    assert cfg.node.signing_keys[0].file == secrets / "kz.pem"


def test_jwk_file_may_hold_a_jwk_set_with_the_kid(cdir: ConfigDir) -> None:
    other = PublicKey("KG:SRS#old", generate_private_key("p256").public_key()).jwk()
    (cdir.root / "public" / "kg.jwk.json").write_text(json.dumps({"keys": [other, cdir.kg_jwk]}))
    cfg = load_config(cdir.write(cdir.base_text()), env={})
    assert cfg.partners[1].keys[0].jwk == cdir.kg_jwk


def test_dates_may_be_quoted(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "signed: 2019-04-15", 'signed: "2019-04-15"')
    cfg = load_config(cdir.write(text), env={})
    assert cfg.agreements[0].signed == date(2019, 4, 15)


def test_settings_read_the_config_path_from_migex_config(
    monkeypatch: pytest.MonkeyPatch, cdir: ConfigDir
) -> None:
    path = cdir.write(cdir.base_text())
    monkeypatch.setenv("MIGEX_CONFIG", str(path))
    settings = Settings()
    assert settings.config_path == path
    assert settings.load().party == "KZ:MIA"


# -- every problem, with its line --------------------------------------------------


def test_error_lines_have_file_line_path_and_message(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), 'party: "UZ:MIA"', 'party: "UZ-MIA"')
    path = cdir.write(text)
    message = refused(path)
    line = line_of(text, 'party: "UZ-MIA"')
    assert message == f"{path}:{line}: partners[0].party: 'UZ-MIA' is not a party id such as KZ:MIA"


def test_all_problems_are_reported_not_only_the_first(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), "        agreements: [kz-kg-2019]\n", "        agreements: [kz-xx]\n"
    )
    text = replace_once(text, "algs: [ES256]", "algs: [Ed25519]")
    text = replace_once(text, 'audit_kid: "KZ:MIA#2026-01"', 'audit_kid: "KZ:MIA#2099-01"')
    path = cdir.write(text)
    message = refused(path)
    assert len(message.splitlines()) == 3
    lines = [int(m.split(":")[1]) for m in message.splitlines()]
    assert lines == sorted(lines)


def test_unknown_agreement_in_a_rule_names_its_line(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), "        agreements: [kz-kg-2019]\n", "        agreements: [kz-kg-2091]\n"
    )
    path = cdir.write(text)
    line = line_of(text, "agreements: [kz-kg-2091]")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].rules[0].agreements[0]",
        "unknown agreement 'kz-kg-2091'",
    )


def test_rule_type_not_covered_by_its_agreement_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "        types: [statistics.migration-flows]\n        agreements: [kz-kg-2019]",
        "        types: [statistics.migration-flows, readmission.request]\n        agreements: [kz-kg-2019]",
    )
    path = cdir.write(text)
    line = line_of(text, "agreements: [kz-kg-2019]", after="id: kg-in-statistics")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].rules[0].agreements[0]",
        "agreement kz-kg-2019 does not cover readmission.request x statistics",
    )


def test_rule_purpose_not_covered_by_its_agreement_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "purposes: [statistics]\n      - id: uz-out",
        "purposes: [readmission]\n      - id: uz-out",
    )
    path = cdir.write(text)
    line = line_of(text, "agreements: [kz-uz-2019]", after="id: uz-in-statistics")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[0].agreements[0]",
        "does not cover statistics.migration-flows x readmission",
    )


def test_agreement_not_binding_the_partner_country_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), "        agreements: [kz-kg-2019]\n", "        agreements: [kz-uz-2019]\n"
    )
    path = cdir.write(text)
    line = line_of(text, "agreements: [kz-uz-2019]", after="id: kg-in-statistics")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].rules[0].agreements[0]",
        "agreement kz-uz-2019 does not bind KG",
    )


def test_agreement_not_binding_the_node_country_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "parties: [KZ, KG]", "parties: [KG, TJ]")
    path = cdir.write(text)
    line = line_of(text, "agreements: [kz-kg-2019]")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].rules[0].agreements[0]",
        "agreement kz-kg-2019 does not bind KZ",
    )


def test_duplicate_partner_party_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), 'party: "KG:SRS"', 'party: "UZ:MIA"')
    path = cdir.write(text)
    line = line_of(text, 'party: "UZ:MIA"', after="jwk: ")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].party",
        "party 'UZ:MIA' is already used at partners[0].party",
    )


def test_node_listed_as_its_own_partner_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), 'party: "KG:SRS"', 'party: "KZ:MIA"')
    path = cdir.write(text)
    line = line_of(text, 'party: "KZ:MIA"', after="partners:")
    assert_problem(
        refused(path), path, line, "partners[1].party", "a node cannot be its own partner"
    )


def test_duplicate_kid_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), '      - kid: "KG:SRS#2026-01"', '      - kid: "UZ:MIA#2026-01"'
    )
    path = cdir.write(text)
    line = line_of(text, 'kid: "UZ:MIA#2026-01"', after="KG:SRS")
    assert_problem(
        refused(path), path, line, "partners[1].keys[0].kid", "kid 'UZ:MIA#2026-01' is already used"
    )


def test_duplicate_rule_id_is_refused_across_partners(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "id: kg-in-statistics", "id: uz-in-statistics")
    path = cdir.write(text)
    line = line_of(text, "id: uz-in-statistics", after="KG:SRS")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].rules[0].id",
        "rule id 'uz-in-statistics' is already used at partners[0].rules[0].id",
    )


def test_partner_kid_not_owned_by_its_party_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), 'kid: "UZ:MIA#2026-01"', 'kid: "TJ:MIA#2026-01"')
    path = cdir.write(text)
    line = line_of(text, 'kid: "TJ:MIA#2026-01"')
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].keys[0].kid",
        "key TJ:MIA#2026-01 does not belong to UZ:MIA",
    )


def test_node_kid_not_owned_by_the_node_is_refused(cdir: ConfigDir) -> None:
    text = cdir.base_text().replace('"KZ:MIA#2026-01"', '"KZ:BNS#2026-01"')
    path = cdir.write(text)
    line = line_of(text, 'kid: "KZ:BNS#2026-01"')
    assert_problem(
        refused(path), path, line, "node.signing_keys[0].kid", "does not belong to KZ:MIA"
    )


def test_malformed_jwk_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), '"crv": "Ed25519"', '"crv": "Ed448"')
    path = cdir.write(text)
    line = line_of(text, '"crv": "Ed448"')
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].keys[0].jwk",
        "malformed JWK: OKP JWK must have crv 'Ed25519'",
    )


def test_jwk_with_private_key_material_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), '"kty": "OKP"', '"d": "AAAA", "kty": "OKP"')
    path = cdir.write(text)
    line = line_of(text, '"d": "AAAA"')
    assert_problem(refused(path), path, line, "partners[0].keys[0].jwk", "private key material")


def test_malformed_jwk_file_is_refused_at_the_jwk_file_line(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").write_text(json.dumps({**cdir.kg_jwk, "y": "AA"}))
    text = cdir.base_text()
    path = cdir.write(text)
    line = line_of(text, "jwk_file:")
    assert_problem(refused(path), path, line, "partners[1].keys[0].jwk_file", "malformed JWK")


def test_algs_not_permitted_by_the_key_type_are_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "algs: [Ed25519, EdDSA]", "algs: [Ed25519, ES256]")
    path = cdir.write(text)
    line = line_of(text, "algs: [Ed25519, ES256]")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].keys[0].algs",
        "ES256 not permitted for this Ed25519 key (permitted: Ed25519, EdDSA)",
    )


def test_hmac_and_none_algorithms_are_never_accepted(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "algs: [ES256]", "algs: [HS256, none]")
    path = cdir.write(text)
    line = line_of(text, "algs: [HS256, none]")
    message = refused(path)
    assert_problem(message, path, line, "partners[1].keys[0].algs[0]", "Input should be")
    assert_problem(message, path, line, "partners[1].keys[0].algs[1]", "Input should be")


def test_overlapping_rules_of_one_partner_are_refused(cdir: ConfigDir) -> None:
    extra = (
        "      - id: uz-in-statistics-too\n"
        "        direction: inbound\n"
        "        types: [statistics.migration-flows, citizenship.verification-request]\n"
        "        agreements: [kz-uz-2019]\n"
        "        purposes: [statistics]\n"
    )
    text = replace_once(
        cdir.base_text(),
        "      - id: uz-out-verification-response\n",
        extra + "      - id: uz-out-verification-response\n",
    )
    path = cdir.write(text)
    line = line_of(text, "- id: uz-in-statistics-too")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[1]",
        "overlapping rules uz-in-statistics and uz-in-statistics-too: both allow inbound "
        "statistics.migration-flows under kz-uz-2019 for statistics",
    )


def test_same_triple_in_both_directions_is_not_an_overlap(cdir: ConfigDir) -> None:
    extra = (
        "      - id: uz-out-statistics\n"
        "        direction: outbound\n"
        "        types: [statistics.migration-flows]\n"
        "        agreements: [kz-uz-2019]\n"
        "        purposes: [statistics]\n"
        '        fields: ["*"]\n'
    )
    text = replace_once(
        cdir.base_text(),
        "      - id: uz-out-verification-response\n",
        extra + "      - id: uz-out-verification-response\n",
    )
    cfg = load_config(cdir.write(text), env={})
    assert [r.id for r in cfg.partners[0].rules][:2] == ["uz-in-statistics", "uz-out-statistics"]


def test_outbound_rule_without_fields_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "        fields: [result, person.names]\n", "")
    path = cdir.write(text)
    line = line_of(text, "- id: uz-out-verification-response")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[1]",
        "outbound rule uz-out-verification-response must list the fields",
    )


def test_inbound_rule_with_fields_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "        purposes: [statistics]\n      - id: uz-out",
        '        purposes: [statistics]\n        fields: ["*"]\n      - id: uz-out',
    )
    path = cdir.write(text)
    line = line_of(text, 'fields: ["*"]')
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[0].fields",
        "fields apply to outbound rules only",
    )


def test_wildcard_field_with_other_fields_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "fields: [result, person.names]", 'fields: [result, "*"]')
    path = cdir.write(text)
    line = line_of(text, 'fields: [result, "*"]')
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[1].fields",
        '"*" (the whole body) must be the only entry',
    )


def test_unknown_active_kid_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), 'active_kid: "KZ:MIA#2026-01"', 'active_kid: "KZ:MIA#2025-01"'
    )
    path = cdir.write(text)
    line = line_of(text, "active_kid:")
    assert_problem(
        refused(path),
        path,
        line,
        "node.active_kid",
        "KZ:MIA#2025-01 is not one of node.signing_keys",
    )


def test_unknown_audit_kid_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(), 'audit_kid: "KZ:MIA#2026-01"', 'audit_kid: "KZ:MIA#2025-01"'
    )
    path = cdir.write(text)
    line = line_of(text, "audit_kid:")
    assert_problem(
        refused(path),
        path,
        line,
        "node.audit_kid",
        "KZ:MIA#2025-01 is not one of node.signing_keys",
    )


def test_audit_key_that_is_not_ed25519_is_refused(cdir: ConfigDir) -> None:
    write_private_key(cdir.root / "kz-p256.pem", generate_private_key("p256"))
    text = replace_once(cdir.base_text(), "file: kz.pem", "file: kz-p256.pem")
    path = cdir.write(text)
    line = line_of(text, "audit_kid:")
    assert_problem(
        refused(path),
        path,
        line,
        "node.audit_kid",
        "key KZ:MIA#2026-01 is P-256; audit checkpoints are signed notes and need an Ed25519 key",
    )


def test_p256_active_key_with_ed25519_audit_key_loads(cdir: ConfigDir) -> None:
    write_private_key(cdir.root / "kz-p256.pem", generate_private_key("p256"))
    text = replace_once(
        cdir.base_text(),
        '      file: kz.pem\n  active_kid: "KZ:MIA#2026-01"',
        '      file: kz.pem\n    - kid: "KZ:MIA#p256"\n      file: kz-p256.pem\n  active_kid: "KZ:MIA#p256"',
    )
    cfg = load_config(cdir.write(text), env={})
    assert cfg.node.active_kid == "KZ:MIA#p256"


def test_published_kids_must_include_the_active_key(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        '  audit_kid: "KZ:MIA#2026-01"\n',
        '  audit_kid: "KZ:MIA#2026-01"\n  published_kids: []\n',
    )
    path = cdir.write(text)
    line = line_of(text, "published_kids:")
    assert_problem(
        refused(path),
        path,
        line,
        "node.published_kids",
        "the active key KZ:MIA#2026-01 must be published",
    )


def test_missing_key_file_is_refused(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").unlink()
    text = cdir.base_text()
    path = cdir.write(text)
    line = line_of(text, "file: kz.pem")
    assert_problem(refused(path), path, line, "node.signing_keys[0].file", "cannot open key file")


def test_key_file_readable_by_others_is_refused(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").chmod(0o644)
    text = cdir.base_text()
    path = cdir.write(text)
    line = line_of(text, "file: kz.pem")
    assert_problem(refused(path), path, line, "node.signing_keys[0].file", "mode is 0644")


def test_key_files_are_not_opened_when_checks_are_off(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").unlink()
    cfg = load_config(cdir.write(cdir.base_text()), env={}, check_key_files=False)
    assert cfg.node.signing_keys[0].file == cdir.root / "kz.pem"


def test_salt_file_readable_by_others_is_refused(cdir: ConfigDir) -> None:
    salt = cdir.root / "salt"
    salt.write_bytes(b"s" * 32)
    salt.chmod(0o640)
    text = cdir.base_text() + "audit: {identifier_salt_file: salt}\n"
    path = cdir.write(text)
    line = line_of(text, "identifier_salt_file")
    assert_problem(refused(path), path, line, "audit.identifier_salt_file", "has mode 0640")


def test_missing_jwk_file_is_refused_at_its_line(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").unlink()
    text = cdir.base_text()
    path = cdir.write(text)
    line = line_of(text, "jwk_file: public/kg.jwk.json")
    assert_problem(
        refused(path, check_key_files=False),
        path,
        line,
        "partners[1].keys[0].jwk_file",
        "cannot read",
    )


def test_jwk_set_without_the_kid_is_refused(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").write_text(json.dumps({"keys": []}))
    text = cdir.base_text()
    path = cdir.write(text)
    line = line_of(text, "jwk_file:")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].keys[0].jwk_file",
        "has no key with kid 'KG:SRS#2026-01'",
    )


def test_key_with_both_jwk_and_jwk_file_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "        jwk_file: public/kg.jwk.json\n",
        "        jwk_file: public/kg.jwk.json\n        jwk: {}\n",
    )
    path = cdir.write(text)
    line = line_of(text, '- kid: "KG:SRS#2026-01"')
    assert_problem(
        refused(path), path, line, "partners[1].keys[0]", "give exactly one of jwk and jwk_file"
    )


def test_revoked_at_with_revoked_false_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "algs: [ES256]",
        "algs: [ES256]\n        revoked: false\n        revoked_at: 2026-05-01",
    )
    path = cdir.write(text)
    line = line_of(text, "revoked_at:")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[1].keys[0].revoked_at",
        "revoked_at is set but revoked is false",
    )


def test_unknown_field_is_refused_at_its_line(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "rate_limit: {per_second: 5, burst: 10}",
        "rate_limit: {per_second: 5, brust: 10}",
    )
    path = cdir.write(text)
    line = line_of(text, "brust")
    assert_problem(
        refused(path), path, line, "partners[0].rate_limit.brust", "unknown field 'brust'"
    )


def test_missing_required_field_is_reported_at_its_parent(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), '    endpoint: "http://127.0.0.1:8002"\n', "")
    path = cdir.write(text)
    line = line_of(text, '- party: "KG:SRS"')
    assert_problem(refused(path), path, line, "partners[1].endpoint", "required field is missing")


def test_unknown_message_type_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        "types: [citizenship.verification-response]",
        "types: [citizenship.verification-reply]",
    )
    path = cdir.write(text)
    line = line_of(text, "citizenship.verification-reply")
    assert_problem(
        refused(path),
        path,
        line,
        "partners[0].rules[1].types[0]",
        "unknown message type 'citizenship.verification-reply'",
    )


def test_integer_date_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "signed: 2019-04-15", "signed: 20190415")
    path = cdir.write(text)
    line = line_of(text, "signed: 20190415")
    assert_problem(refused(path), path, line, "agreements[0].signed", "must be a date (YYYY-MM-DD)")


def test_in_force_before_signing_is_refused(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "in_force: 2020-05-22", "in_force: 2019-01-01")
    path = cdir.write(text)
    line = line_of(text, "in_force: 2019-01-01")
    assert_problem(
        refused(path),
        path,
        line,
        "agreements[0].in_force",
        "in_force 2019-01-01 is before signed 2019-04-15",
    )


def test_endpoint_must_be_an_http_url(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), '"http://127.0.0.1:8002"', '"ftp://127.0.0.1/x"')
    path = cdir.write(text)
    line = line_of(text, "ftp://")
    assert_problem(refused(path), path, line, "partners[1].endpoint", "is not an http or https URL")


def test_duplicate_token_hash_is_refused(cdir: ConfigDir) -> None:
    digest = hashlib.sha256(b"auditor-token-for-tests").hexdigest()
    text = cdir.base_text() + f'  - {{name: auditor-kz-2, role: auditor, sha256: "{digest}"}}\n'
    path = cdir.write(text)
    line = line_of(text, "auditor-kz-2")
    assert_problem(refused(path), path, line, "tokens[1].sha256", "token hash")


def test_lease_not_longer_than_delivery_timeout_is_refused(cdir: ConfigDir) -> None:
    text = cdir.base_text() + "delivery:\n  timeout_seconds: 30\n  lease_seconds: 30\n"
    path = cdir.write(text)
    line = line_of(text, "lease_seconds: 30")
    assert_problem(
        refused(path), path, line, "delivery.lease_seconds", "must be longer than timeout_seconds"
    )


def test_duplicate_yaml_key_is_refused_with_both_lines(cdir: ConfigDir) -> None:
    text = replace_once(
        cdir.base_text(),
        '  name: "Ministry of Internal Affairs of the Republic of Kazakhstan"\n',
        '  name: "A"\n  name: "B"\n',
    )
    path = cdir.write(text)
    first, second = line_of(text, 'name: "A"'), line_of(text, 'name: "B"')
    assert f"{path}:{second}: duplicate key 'name' (first given on line {first})" in refused(path)


def test_yaml_syntax_error_names_its_line(cdir: ConfigDir) -> None:
    text = replace_once(cdir.base_text(), "parties: [KZ, UZ]", "parties: [KZ, UZ")
    path = cdir.write(text)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", refused(path))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert refused(path) == f"{path}: cannot read: No such file or directory"


def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert refused(path) == f"{path}:1: must be a mapping"


# -- the sample deployment ---------------------------------------------------------


def _federation_public_keys(directory: Path) -> None:
    for short, party in FEDERATION.items():
        key = generate_private_key("ed25519")
        (directory / f"{short}.jwk.json").write_text(
            json.dumps(PublicKey(f"{party}#2026-01", key.public_key()).jwk())
        )


@pytest.mark.parametrize("short", sorted(FEDERATION))
def test_docker_config_loads(short: str, tmp_path: Path) -> None:
    _federation_public_keys(tmp_path)
    cfg = load_config(
        DOCKER_CONFIGS / f"{short}.yaml",
        env={"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)},
        check_key_files=False,
    )
    assert cfg.party == FEDERATION[short]
    assert cfg.node.signing_keys[0].file == Path(f"/run/secrets/{short}_signing_key")
    assert cfg.database_url == f"postgresql+psycopg://migex@postgres:5432/migex_{short}"


def _docker_registries(tmp_path: Path) -> dict[str, PartnerRegistry]:
    _federation_public_keys(tmp_path)
    env = {"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)}
    return {
        FEDERATION[s]: PartnerRegistry.from_config(
            load_config(DOCKER_CONFIGS / f"{s}.yaml", env=env, check_key_files=False)
        )
        for s in FEDERATION
    }


def test_docker_configs_mirror_each_other(tmp_path: Path) -> None:
    registries = _docker_registries(tmp_path)
    flows: dict[str, set[tuple[str, str, str, str, str]]] = {"outbound": set(), "inbound": set()}
    for node, registry in registries.items():
        for partner in registry.partners():
            for rule in partner.rules:
                sender, receiver = (
                    (node, partner.party) if rule.direction == "outbound" else (partner.party, node)
                )
                for t in rule.types:
                    for a in rule.agreements:
                        for p in rule.purposes:
                            flows[rule.direction].add((sender, receiver, t, a, p))
    assert flows["outbound"] == flows["inbound"]
    assert (
        "KZ:MIA",
        "UZ:MIA",
        "migration.violation-notice",
        "kz-uz-2019",
        "illegal-migration-control",
    ) in flows["outbound"]
    assert (
        "KG:SRS",
        "KZ:MIA",
        "citizenship.verification-response",
        "cis-1998",
        "identity-verification",
    ) in flows["outbound"]
    assert ("TJ:MIA", "KZ:MIA", "readmission.response", "kz-tj-2018", "readmission") in flows[
        "outbound"
    ]


def test_docker_agreements_agree_between_nodes(tmp_path: Path) -> None:
    registries = _docker_registries(tmp_path)
    seen: dict[str, object] = {}
    for registry in registries.values():
        for agreement_id, agreement in registry.agreements.items():
            assert seen.setdefault(agreement_id, agreement) == agreement


def test_docker_kz_kg_agreement_is_not_in_force_in_2026(tmp_path: Path) -> None:
    registry = _docker_registries(tmp_path)["KG:SRS"]
    with pytest.raises(Problem) as info:
        check_agreement(
            registry.agreements,
            agreement_id="kz-kg-2019",
            iss="KZ:MIA",
            aud="KG:SRS",
            msg_type="statistics.migration-flows",
            purpose="statistics",
            on=date(2026, 11, 24),
        )
    assert (
        info.value.detail
        == "agreement kz-kg-2019 is not in force on 2026-11-24 (enters into force 2027-07-01)"
    )


@pytest.mark.parametrize("short", sorted(FEDERATION))
def test_docker_tokens_are_the_documented_development_tokens(short: str, tmp_path: Path) -> None:
    _federation_public_keys(tmp_path)
    cfg = load_config(
        DOCKER_CONFIGS / f"{short}.yaml",
        env={"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)},
        check_key_files=False,
    )
    store = TokenStore([(t.name, t.role, bytes.fromhex(t.sha256)) for t in cfg.tokens])
    for role in ("auditor", "operator", "client"):
        principal = store.authenticate(f"{short}-{role}-dev-token")
        assert principal is not None
        assert principal.role == role


def test_sample_template_renders_a_loadable_config(tmp_path: Path) -> None:
    write_private_key(tmp_path / "kz.pem", generate_private_key("ed25519"))
    write_private_key(tmp_path / "kz-witness.pem", generate_private_key("ed25519"))
    uz = PublicKey("UZ:MIA#dev-1", generate_private_key("ed25519").public_key())
    (tmp_path / "uz.jwk.json").write_text(json.dumps(uz.jwk()))
    text = render_sample_config(
        signing_key_file=tmp_path / "kz.pem",
        witness_key_file=tmp_path / "kz-witness.pem",
        database_url=f"sqlite:///{tmp_path / 'node.db'}",
        partner_jwk_file=tmp_path / "uz.jwk.json",
    )
    path = tmp_path / "node.yaml"
    path.write_text(text)
    cfg = load_config(path, env={})
    assert cfg.partners[0].party == "UZ:MIA"
    assert cfg.node.signing_keys[0].file == tmp_path / "kz.pem"
    assert cfg.node.witness_kid == "KZ:MIA#witness-1"


def test_configuration_docs_reproduce_the_kz_file_exactly() -> None:
    docs = (DOCKER_CONFIGS.parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    kz = (DOCKER_CONFIGS / "kz.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{kz}```\n" in docs
