"""Loading the operator's YAML: validation, cross-checks, and the line of every problem."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import date
from operator import attrgetter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.api.tokens import TokenStore
from service.audit.checkpoint import log_origin
from service.audit.note import verifier_key
from service.config import ConfigError, NodeConfig, load_config, render_sample_config
from service.config.build import registry_from_config
from service.config.witnesscheck import read_policy
from service.partners.agreements import check_agreement
from service.partners.registry import PartnerRegistry
from service.protocol.keys import PublicKey, generate_private_key, write_private_key
from service.protocol.problems import Problem
from service.witness.cosignature import CosignerKey
from service.witness.setup import witnessed_logs
from tests.unit.config.configfiles import ConfigDir, line_of, make_config_dir, replace_once
from tests.unit.deploy.conftest import config_reading_policy_from

DOCKER_CONFIGS = Path(__file__).resolve().parents[3] / "docker" / "config"
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


# -- variants of the base file ------------------------------------------------------
#
# Most cases below take the base file, change it in one place (and sometimes the key
# files next to it), and load it. Each case is a row of a table; its id is the name it
# would have as a test of its own, so `pytest -k duplicate_kid` finds it.


@dataclass(frozen=True)
class Variant:
    """The base file with `old` replaced once by `new` and `append` added at its end."""

    name: str
    _: KW_ONLY
    old: str = ""
    new: str = ""
    append: str = ""
    prepare: Callable[[ConfigDir], None] | None = None  # changes the key files first

    def write(self, cdir: ConfigDir) -> tuple[Path, str]:
        if self.prepare is not None:
            self.prepare(cdir)
        text = cdir.base_text()
        if self.old:
            text = replace_once(text, self.old, self.new)
        text += self.append
        return cdir.write(text), text


@dataclass(frozen=True, kw_only=True)
class Loads(Variant):
    """A variant that loads, and the value `value(cfg)` it must load as."""

    env: Mapping[str, str] = field(default_factory=dict)
    value: Callable[[NodeConfig], object]
    expected: object


@dataclass(frozen=True, kw_only=True)
class Refusal(Variant):
    """A variant refused with `message` for `where`, on the first line holding `at`.

    With `after`, the line holding `at` is searched for below the first line holding
    `after`. `also_where` names further paths refused on that line with that message.
    """

    at: str
    after: str | None = None
    where: str
    also_where: tuple[str, ...] = ()
    message: str
    check_key_files: bool = True


def _add_p256_signing_key(cdir: ConfigDir) -> None:
    write_private_key(cdir.root / "kz-p256.pem", generate_private_key("p256"))


def _remove_signing_key(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").unlink()


def _open_signing_key_to_others(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").chmod(0o644)


def _add_group_readable_salt(cdir: ConfigDir) -> None:
    salt = cdir.root / "salt"
    salt.write_bytes(b"s" * 32)
    salt.chmod(0o640)


def _add_short_subject_key(cdir: ConfigDir) -> None:
    key = cdir.root / "subject.key"
    key.write_bytes(b"k" * 16)
    key.chmod(0o600)


def _add_group_readable_subject_key(cdir: ConfigDir) -> None:
    key = cdir.root / "subject.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o640)


def _remove_kg_jwk_file(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").unlink()


def _corrupt_kg_jwk_file(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").write_text(json.dumps({**cdir.kg_jwk, "y": "AA"}))


def _empty_kg_jwk_set(cdir: ConfigDir) -> None:
    (cdir.root / "public" / "kg.jwk.json").write_text(json.dumps({"keys": []}))


UZ_OUT_RULE = "      - id: uz-out-verification-response\n"
UZ_OUT_STATISTICS_RULE = (
    "      - id: uz-out-statistics\n"
    "        direction: outbound\n"
    "        types: [statistics.migration-flows]\n"
    "        agreements: [kz-uz-2019]\n"
    "        purposes: [statistics]\n"
    '        fields: ["*"]\n'
)
UZ_IN_STATISTICS_TOO_RULE = (
    "      - id: uz-in-statistics-too\n"
    "        direction: inbound\n"
    "        types: [statistics.migration-flows, citizenship.verification-request]\n"
    "        agreements: [kz-uz-2019]\n"
    "        purposes: [statistics]\n"
)
AUDITOR_SHA256 = hashlib.sha256(b"auditor-token-for-tests").hexdigest()


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


LOADS = [
    Loads(
        "endpoint_loses_its_trailing_slash",
        value=lambda cfg: cfg.partners[0].endpoint,
        expected="http://127.0.0.1:8001",
    ),
    Loads(
        "env_database_url_overrides_the_file",
        env={"MIGEX_DATABASE_URL": "postgresql+psycopg://migex@db/migex"},
        value=lambda cfg: cfg.database_url,
        expected="postgresql+psycopg://migex@db/migex",
    ),
    Loads(
        "env_database_url_supplies_a_missing_database_url",
        old='database_url: "sqlite:///var/kz/migex.db"\n',
        new="",
        env={"MIGEX_DATABASE_URL": "sqlite:///x.db"},
        value=lambda cfg: cfg.database_url,
        expected="sqlite:///x.db",
    ),
    Loads(
        "dates_may_be_quoted",
        old="signed: 2019-04-15",
        new='signed: "2019-04-15"',
        value=lambda cfg: cfg.agreements[0].signed,
        expected=date(2019, 4, 15),
    ),
    Loads(
        "same_triple_in_both_directions_is_not_an_overlap",
        old=UZ_OUT_RULE,
        new=UZ_OUT_STATISTICS_RULE + UZ_OUT_RULE,
        value=lambda cfg: [r.id for r in cfg.partners[0].rules][:2],
        expected=["uz-in-statistics", "uz-out-statistics"],
    ),
    Loads(
        "p256_active_key_with_ed25519_audit_key_loads",
        prepare=_add_p256_signing_key,
        old='      file: kz.pem\n  active_kid: "KZ:MIA#2026-01"',
        new='      file: kz.pem\n    - kid: "KZ:MIA#p256"\n      file: kz-p256.pem\n  active_kid: "KZ:MIA#p256"',
        value=lambda cfg: cfg.node.active_kid,
        expected="KZ:MIA#p256",
    ),
]


@pytest.mark.parametrize("case", LOADS, ids=attrgetter("name"))
def test_variant_loads(case: Loads, cdir: ConfigDir) -> None:
    path, _ = case.write(cdir)
    cfg = load_config(path, env=case.env)
    assert case.value(cfg) == case.expected


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


REFUSALS = [
    Refusal(
        "unknown_agreement_in_a_rule_names_its_line",
        old="        agreements: [kz-kg-2019]\n",
        new="        agreements: [kz-kg-2091]\n",
        at="agreements: [kz-kg-2091]",
        where="partners[1].rules[0].agreements[0]",
        message="unknown agreement 'kz-kg-2091'",
    ),
    Refusal(
        "rule_type_not_covered_by_its_agreement_is_refused",
        old="        types: [statistics.migration-flows]\n        agreements: [kz-kg-2019]",
        new="        types: [statistics.migration-flows, readmission.request]\n        agreements: [kz-kg-2019]",
        at="agreements: [kz-kg-2019]",
        after="id: kg-in-statistics",
        where="partners[1].rules[0].agreements[0]",
        message="agreement kz-kg-2019 does not cover readmission.request x statistics",
    ),
    Refusal(
        "rule_purpose_not_covered_by_its_agreement_is_refused",
        old="purposes: [statistics]\n      - id: uz-out",
        new="purposes: [readmission]\n      - id: uz-out",
        at="agreements: [kz-uz-2019]",
        after="id: uz-in-statistics",
        where="partners[0].rules[0].agreements[0]",
        message="does not cover statistics.migration-flows x readmission",
    ),
    Refusal(
        "agreement_not_binding_the_partner_country_is_refused",
        old="        agreements: [kz-kg-2019]\n",
        new="        agreements: [kz-uz-2019]\n",
        at="agreements: [kz-uz-2019]",
        after="id: kg-in-statistics",
        where="partners[1].rules[0].agreements[0]",
        message="agreement kz-uz-2019 does not bind KG",
    ),
    Refusal(
        "agreement_not_binding_the_node_country_is_refused",
        old="parties: [KZ, KG]",
        new="parties: [KG, TJ]",
        at="agreements: [kz-kg-2019]",
        where="partners[1].rules[0].agreements[0]",
        message="agreement kz-kg-2019 does not bind KZ",
    ),
    Refusal(
        "duplicate_partner_party_is_refused",
        old='party: "KG:SRS"',
        new='party: "UZ:MIA"',
        at='party: "UZ:MIA"',
        after="jwk: ",
        where="partners[1].party",
        message="party 'UZ:MIA' is already used at partners[0].party",
    ),
    Refusal(
        "node_listed_as_its_own_partner_is_refused",
        old='party: "KG:SRS"',
        new='party: "KZ:MIA"',
        at='party: "KZ:MIA"',
        after="partners:",
        where="partners[1].party",
        message="a node cannot be its own partner",
    ),
    Refusal(
        "duplicate_kid_is_refused",
        old='      - kid: "KG:SRS#2026-01"',
        new='      - kid: "UZ:MIA#2026-01"',
        at='kid: "UZ:MIA#2026-01"',
        after="KG:SRS",
        where="partners[1].keys[0].kid",
        message="kid 'UZ:MIA#2026-01' is already used",
    ),
    Refusal(
        "duplicate_rule_id_is_refused_across_partners",
        old="id: kg-in-statistics",
        new="id: uz-in-statistics",
        at="id: uz-in-statistics",
        after="KG:SRS",
        where="partners[1].rules[0].id",
        message="rule id 'uz-in-statistics' is already used at partners[0].rules[0].id",
    ),
    Refusal(
        "partner_kid_not_owned_by_its_party_is_refused",
        old='kid: "UZ:MIA#2026-01"',
        new='kid: "TJ:MIA#2026-01"',
        at='kid: "TJ:MIA#2026-01"',
        where="partners[0].keys[0].kid",
        message="key TJ:MIA#2026-01 does not belong to UZ:MIA",
    ),
    Refusal(
        # The node's one kid renamed in all three places it is given.
        "node_kid_not_owned_by_the_node_is_refused",
        old='    - kid: "KZ:MIA#2026-01"\n'
        "      file: kz.pem\n"
        '  active_kid: "KZ:MIA#2026-01"\n'
        '  audit_kid: "KZ:MIA#2026-01"\n',
        new='    - kid: "KZ:BNS#2026-01"\n'
        "      file: kz.pem\n"
        '  active_kid: "KZ:BNS#2026-01"\n'
        '  audit_kid: "KZ:BNS#2026-01"\n',
        at='kid: "KZ:BNS#2026-01"',
        where="node.signing_keys[0].kid",
        message="does not belong to KZ:MIA",
    ),
    Refusal(
        "malformed_jwk_is_refused",
        old='"crv": "Ed25519"',
        new='"crv": "Ed448"',
        at='"crv": "Ed448"',
        where="partners[0].keys[0].jwk",
        message="malformed JWK: OKP JWK must have crv 'Ed25519'",
    ),
    Refusal(
        "jwk_with_private_key_material_is_refused",
        old='"kty": "OKP"',
        new='"d": "AAAA", "kty": "OKP"',
        at='"d": "AAAA"',
        where="partners[0].keys[0].jwk",
        message="private key material",
    ),
    Refusal(
        "malformed_jwk_file_is_refused_at_the_jwk_file_line",
        prepare=_corrupt_kg_jwk_file,
        at="jwk_file:",
        where="partners[1].keys[0].jwk_file",
        message="malformed JWK",
    ),
    Refusal(
        "algs_not_permitted_by_the_key_type_are_refused",
        old="algs: [Ed25519, EdDSA]",
        new="algs: [Ed25519, ES256]",
        at="algs: [Ed25519, ES256]",
        where="partners[0].keys[0].algs",
        message="ES256 not permitted for this Ed25519 key (permitted: Ed25519, EdDSA)",
    ),
    Refusal(
        "hmac_and_none_algorithms_are_never_accepted",
        old="algs: [ES256]",
        new="algs: [HS256, none]",
        at="algs: [HS256, none]",
        where="partners[1].keys[0].algs[0]",
        also_where=("partners[1].keys[0].algs[1]",),
        message="Input should be",
    ),
    Refusal(
        "overlapping_rules_of_one_partner_are_refused",
        old=UZ_OUT_RULE,
        new=UZ_IN_STATISTICS_TOO_RULE + UZ_OUT_RULE,
        at="- id: uz-in-statistics-too",
        where="partners[0].rules[1]",
        message="overlapping rules uz-in-statistics and uz-in-statistics-too: both allow inbound "
        "statistics.migration-flows under kz-uz-2019 for statistics",
    ),
    Refusal(
        "outbound_rule_without_fields_is_refused",
        old="        fields: [result, person.names]\n",
        new="",
        at="- id: uz-out-verification-response",
        where="partners[0].rules[1]",
        message="outbound rule uz-out-verification-response must list the fields",
    ),
    Refusal(
        "inbound_rule_with_fields_is_refused",
        old="        purposes: [statistics]\n      - id: uz-out",
        new='        purposes: [statistics]\n        fields: ["*"]\n      - id: uz-out',
        at='fields: ["*"]',
        where="partners[0].rules[0].fields",
        message="fields apply to outbound rules only",
    ),
    Refusal(
        "wildcard_field_with_other_fields_is_refused",
        old="fields: [result, person.names]",
        new='fields: [result, "*"]',
        at='fields: [result, "*"]',
        where="partners[0].rules[1].fields",
        message='"*" (the whole body) must be the only entry',
    ),
    Refusal(
        "unknown_active_kid_is_refused",
        old='active_kid: "KZ:MIA#2026-01"',
        new='active_kid: "KZ:MIA#2025-01"',
        at="active_kid:",
        where="node.active_kid",
        message="KZ:MIA#2025-01 is not one of node.signing_keys",
    ),
    Refusal(
        "unknown_audit_kid_is_refused",
        old='audit_kid: "KZ:MIA#2026-01"',
        new='audit_kid: "KZ:MIA#2025-01"',
        at="audit_kid:",
        where="node.audit_kid",
        message="KZ:MIA#2025-01 is not one of node.signing_keys",
    ),
    Refusal(
        "audit_key_that_is_not_ed25519_is_refused",
        prepare=_add_p256_signing_key,
        old="file: kz.pem",
        new="file: kz-p256.pem",
        at="audit_kid:",
        where="node.audit_kid",
        message="key KZ:MIA#2026-01 is P-256; audit checkpoints are signed notes and need an Ed25519 key",
    ),
    Refusal(
        "published_kids_must_include_the_active_key",
        old='  audit_kid: "KZ:MIA#2026-01"\n',
        new='  audit_kid: "KZ:MIA#2026-01"\n  published_kids: []\n',
        at="published_kids:",
        where="node.published_kids",
        message="the active key KZ:MIA#2026-01 must be published",
    ),
    Refusal(
        "missing_key_file_is_refused",
        prepare=_remove_signing_key,
        at="file: kz.pem",
        where="node.signing_keys[0].file",
        message="cannot open key file",
    ),
    Refusal(
        "key_file_readable_by_others_is_refused",
        prepare=_open_signing_key_to_others,
        at="file: kz.pem",
        where="node.signing_keys[0].file",
        message="mode is 0644",
    ),
    Refusal(
        "salt_file_readable_by_others_is_refused",
        prepare=_add_group_readable_salt,
        append="audit: {identifier_salt_file: salt}\n",
        at="identifier_salt_file",
        where="audit.identifier_salt_file",
        message="has mode 0640",
    ),
    Refusal(
        "retention_for_an_unknown_agreement_is_refused",
        append="retention:\n  agreements:\n    - {agreement: kz-xx-2020, message_body_days: 30}\n",
        at="agreement: kz-xx-2020",
        where="retention.agreements[0].agreement",
        message="unknown agreement 'kz-xx-2020'",
    ),
    Refusal(
        "retention_for_an_unknown_category_is_refused",
        append="retention:\n  categories: {attachments: 30}\n",
        at="categories:",
        where="retention.categories.attachments",
        message="unknown category 'attachments'",
    ),
    Refusal(
        "subject_key_file_readable_by_others_is_refused",
        prepare=_add_group_readable_subject_key,
        append="privacy: {subject_key_file: subject.key}\n",
        at="subject_key_file",
        where="privacy.subject_key_file",
        message="subject key file",
    ),
    Refusal(
        "subject_key_shorter_than_32_bytes_is_refused",
        prepare=_add_short_subject_key,
        append="privacy: {subject_key_file: subject.key}\n",
        at="subject_key_file",
        where="privacy.subject_key_file",
        message="holds 16 bytes; it needs at least 32",
    ),
    Refusal(
        "missing_subject_key_file_is_refused",
        append="privacy: {subject_key_file: subject.key}\n",
        at="subject_key_file",
        where="privacy.subject_key_file",
        message="cannot open subject key file",
    ),
    Refusal(
        "missing_jwk_file_is_refused_at_its_line",
        prepare=_remove_kg_jwk_file,
        check_key_files=False,
        at="jwk_file: public/kg.jwk.json",
        where="partners[1].keys[0].jwk_file",
        message="cannot read",
    ),
    Refusal(
        "jwk_set_without_the_kid_is_refused",
        prepare=_empty_kg_jwk_set,
        at="jwk_file:",
        where="partners[1].keys[0].jwk_file",
        message="has no key with kid 'KG:SRS#2026-01'",
    ),
    Refusal(
        "key_with_both_jwk_and_jwk_file_is_refused",
        old="        jwk_file: public/kg.jwk.json\n",
        new="        jwk_file: public/kg.jwk.json\n        jwk: {}\n",
        at='- kid: "KG:SRS#2026-01"',
        where="partners[1].keys[0]",
        message="give exactly one of jwk and jwk_file",
    ),
    Refusal(
        "revoked_at_with_revoked_false_is_refused",
        old="algs: [ES256]",
        new="algs: [ES256]\n        revoked: false\n        revoked_at: 2026-05-01",
        at="revoked_at:",
        where="partners[1].keys[0].revoked_at",
        message="revoked_at is set but revoked is false",
    ),
    Refusal(
        "unknown_field_is_refused_at_its_line",
        old="rate_limit: {per_second: 5, burst: 10}",
        new="rate_limit: {per_second: 5, brust: 10}",
        at="brust",
        where="partners[0].rate_limit.brust",
        message="unknown field 'brust'",
    ),
    Refusal(
        "missing_required_field_is_reported_at_its_parent",
        old='    endpoint: "http://127.0.0.1:8002"\n',
        new="",
        at='- party: "KG:SRS"',
        where="partners[1].endpoint",
        message="required field is missing",
    ),
    Refusal(
        "unknown_message_type_is_refused",
        old="types: [citizenship.verification-response]",
        new="types: [citizenship.verification-reply]",
        at="citizenship.verification-reply",
        where="partners[0].rules[1].types[0]",
        message="unknown message type 'citizenship.verification-reply'",
    ),
    Refusal(
        "integer_date_is_refused",
        old="signed: 2019-04-15",
        new="signed: 20190415",
        at="signed: 20190415",
        where="agreements[0].signed",
        message="must be a date (YYYY-MM-DD)",
    ),
    Refusal(
        "in_force_before_signing_is_refused",
        old="in_force: 2020-05-22",
        new="in_force: 2019-01-01",
        at="in_force: 2019-01-01",
        where="agreements[0].in_force",
        message="in_force 2019-01-01 is before signed 2019-04-15",
    ),
    Refusal(
        "endpoint_must_be_an_http_url",
        old='"http://127.0.0.1:8002"',
        new='"ftp://127.0.0.1/x"',
        at="ftp://",
        where="partners[1].endpoint",
        message="is not an http or https URL",
    ),
    Refusal(
        "duplicate_token_hash_is_refused",
        append=f'  - {{name: auditor-kz-2, role: auditor, sha256: "{AUDITOR_SHA256}"}}\n',
        at="auditor-kz-2",
        where="tokens[1].sha256",
        message="token hash",
    ),
    Refusal(
        "lease_not_longer_than_delivery_timeout_is_refused",
        append="delivery:\n  timeout_seconds: 30\n  lease_seconds: 30\n",
        at="lease_seconds: 30",
        where="delivery.lease_seconds",
        message="must be longer than timeout_seconds",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=attrgetter("name"))
def test_problem_is_reported_at_its_line(case: Refusal, cdir: ConfigDir) -> None:
    path, text = case.write(cdir)
    message = refused(path, check_key_files=case.check_key_files)
    line = line_of(text, case.at, after=case.after)
    for where in (case.where, *case.also_where):
        assert_problem(message, path, line, where, case.message)


def test_key_files_are_not_opened_when_checks_are_off(cdir: ConfigDir) -> None:
    (cdir.root / "kz.pem").unlink()
    cfg = load_config(cdir.write(cdir.base_text()), env={}, check_key_files=False)
    assert cfg.node.signing_keys[0].file == cdir.root / "kz.pem"


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
    """What the compose deployment's keys-init writes into the public keys: each node's
    JWK and witness policy (the other three nodes' witness keys, two of them needed)."""
    log_keys: dict[str, str] = {}
    witness_keys: dict[str, str] = {}
    for short, party in FEDERATION.items():
        key = generate_private_key("ed25519")
        (directory / f"{short}.jwk.json").write_text(
            json.dumps(PublicKey(f"{party}#2026-01", key.public_key()).jwk())
        )
        assert isinstance(key, Ed25519PrivateKey)
        log_keys[short] = verifier_key(log_origin(party), key.public_key())
        witness = Ed25519PrivateKey.generate().public_key()
        witness_keys[short] = CosignerKey(f"migex/{party}/witness", witness).vkey
    for short in FEDERATION:
        others = [n for n in FEDERATION if n != short]
        lines = [f"log {log_keys[short]}"]
        lines += [f"witness {n} {witness_keys[n]} http://{n}:8000/v1/witness" for n in others]
        lines += [f"group partners 2 {' '.join(others)}", "quorum partners", ""]
        (directory / f"{short}.witness-policy").write_text("\n".join(lines))


def _docker_config(short: str, public_dir: Path) -> Path:
    """docker/config/<short>.yaml, reading its witness policy from `public_dir`."""
    return config_reading_policy_from(
        DOCKER_CONFIGS / f"{short}.yaml", public_dir, public_dir / "config"
    )


@pytest.mark.parametrize("short", sorted(FEDERATION))
def test_docker_config_loads(short: str, tmp_path: Path) -> None:
    _federation_public_keys(tmp_path)
    cfg = load_config(
        _docker_config(short, tmp_path),
        env={"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)},
        check_key_files=False,
    )
    assert cfg.party == FEDERATION[short]
    assert cfg.node.signing_keys[0].file == Path(f"/run/secrets/{short}_signing_key")
    assert cfg.database_url == f"postgresql+psycopg://migex@postgres:5432/migex_{short}"
    assert cfg.node.witness_kid == f"{FEDERATION[short]}#witness-2026-01"
    assert cfg.witnessed_by is not None
    assert cfg.witnessed_by.policy_file == tmp_path / f"{short}.witness-policy"


def test_docker_config_without_its_witness_policy_is_refused(tmp_path: Path) -> None:
    _federation_public_keys(tmp_path)
    (tmp_path / "uz.witness-policy").unlink()
    with pytest.raises(ConfigError, match=re.escape("uz.witness-policy: No such file")):
        load_config(
            _docker_config("uz", tmp_path),
            env={"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)},
            check_key_files=False,
        )


def _docker_registries(tmp_path: Path) -> dict[str, PartnerRegistry]:
    _federation_public_keys(tmp_path)
    env = {"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)}
    return {
        FEDERATION[s]: registry_from_config(
            load_config(_docker_config(s, tmp_path), env=env, check_key_files=False)
        )
        for s in FEDERATION
    }


def test_docker_nodes_witness_each_other(tmp_path: Path) -> None:
    """Each node witnesses its partners' logs: every witness in a node's policy has that
    node as a partner, so the policy's two of three can be met."""
    _federation_public_keys(tmp_path)
    env = {"MIGEX_PUBLIC_KEYS_DIR": str(tmp_path)}
    configs = {
        s: load_config(_docker_config(s, tmp_path), env=env, check_key_files=False)
        for s in FEDERATION
    }
    registries = {s: registry_from_config(c) for s, c in configs.items()}
    for short, cfg in configs.items():
        assert cfg.witnessed_by is not None
        policy = read_policy(cfg.witnessed_by.policy_file)
        witnessed_by = {
            n for n in policy.witnesses if log_origin(FEDERATION[short]) in
            witnessed_logs(configs[n], registries[n])
        }  # fmt: skip
        assert witnessed_by == set(FEDERATION) - {short}


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
        _docker_config(short, tmp_path),
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
        kek_file=tmp_path / "kek",
    )
    (tmp_path / "kek").write_bytes(bytes(32))
    (tmp_path / "kek").chmod(0o600)
    path = tmp_path / "node.yaml"
    path.write_text(text)
    cfg = load_config(path, env={})
    assert cfg.partners[0].party == "UZ:MIA"
    assert cfg.node.signing_keys[0].file == tmp_path / "kz.pem"
    assert cfg.node.witness_kid == "KZ:MIA#witness-1"
    assert cfg.privacy.effective_active_kek == "dev-1"


def test_configuration_docs_reproduce_the_kz_file_exactly() -> None:
    docs = (DOCKER_CONFIGS.parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    kz = (DOCKER_CONFIGS / "kz.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{kz}```\n" in docs
