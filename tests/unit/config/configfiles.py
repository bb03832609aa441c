"""Configuration files for tests: a small KZ node with partners UZ and KG, real keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from service.api.tokens import hash_token
from service.protocol.keys import PublicKey, generate_private_key, write_private_key

AUDITOR_TOKEN = "auditor-token-for-tests"

BASE_YAML = """\
node:
  party: "KZ:MIA"
  name: "Ministry of Internal Affairs of the Republic of Kazakhstan"
  signing_keys:
    - kid: "KZ:MIA#2026-01"
      file: kz.pem
  active_kid: "KZ:MIA#2026-01"
  audit_kid: "KZ:MIA#2026-01"
database_url: "sqlite:///var/kz/migex.db"
agreements:
  - id: kz-uz-2019
    title: "Agreement between Kazakhstan and Uzbekistan"
    parties: [KZ, UZ]
    signed: 2019-04-15
    in_force: 2020-05-22
    covers:
      - {types: [statistics.migration-flows], purposes: [statistics]}
      - types: [citizenship.verification-request, citizenship.verification-response]
        purposes: [identity-verification]
  - id: kz-kg-2019
    title: "Agreement between Kazakhstan and Kyrgyzstan"
    parties: [KZ, KG]
    signed: 2019-11-27
    in_force: 2027-07-01
    covers:
      - {types: [statistics.migration-flows], purposes: [statistics]}
partners:
  - party: "UZ:MIA"
    name: "Ministry of Internal Affairs of the Republic of Uzbekistan"
    endpoint: "http://127.0.0.1:8001/"
    keys:
      - kid: "UZ:MIA#2026-01"
        jwk: @UZ_JWK@
        algs: [Ed25519, EdDSA]
    rate_limit: {per_second: 5, burst: 10}
    rules:
      - id: uz-in-statistics
        direction: inbound
        types: [statistics.migration-flows]
        agreements: [kz-uz-2019]
        purposes: [statistics]
      - id: uz-out-verification-response
        direction: outbound
        types: [citizenship.verification-response]
        agreements: [kz-uz-2019]
        purposes: [identity-verification]
        fields: [result, person.names]
  - party: "KG:SRS"
    name: "State Registration Service of the Kyrgyz Republic"
    endpoint: "http://127.0.0.1:8002"
    keys:
      - kid: "KG:SRS#2026-01"
        jwk_file: public/kg.jwk.json
        algs: [ES256]
    rules:
      - id: kg-in-statistics
        direction: inbound
        types: [statistics.migration-flows]
        agreements: [kz-kg-2019]
        purposes: [statistics]
tokens:
  - {name: auditor-kz-1, role: auditor, sha256: "@AUDITOR_SHA256@"}
"""


@dataclass(frozen=True)
class ConfigDir:
    """A directory holding the node's key, the partners' public keys and a config file."""

    root: Path
    uz_jwk: dict[str, str]
    kg_jwk: dict[str, str]

    def write(self, text: str, name: str = "node.yaml") -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def base_text(self) -> str:
        return BASE_YAML.replace("@UZ_JWK@", json.dumps(self.uz_jwk)).replace(
            "@AUDITOR_SHA256@", hash_token(AUDITOR_TOKEN)
        )


def make_config_dir(root: Path) -> ConfigDir:
    """Keys for KZ:MIA (private, mode 0600), UZ:MIA (Ed25519) and KG:SRS (P-256)."""
    write_private_key(root / "kz.pem", generate_private_key("ed25519"))
    uz = PublicKey("UZ:MIA#2026-01", generate_private_key("ed25519").public_key())
    kg = PublicKey("KG:SRS#2026-01", generate_private_key("p256").public_key())
    (root / "public").mkdir()
    (root / "public" / "kg.jwk.json").write_text(json.dumps(kg.jwk()), encoding="utf-8")
    return ConfigDir(root, uz.jwk(), kg.jwk())


def line_of(text: str, needle: str, *, after: str | None = None) -> int:
    """The 1-based line of the first `needle` (after the first line holding `after`)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)
