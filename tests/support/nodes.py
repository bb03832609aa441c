"""Building test nodes: keys, configuration files, signed messages."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.api.tokens import hash_token
from service.protocol import envelope, jws
from service.protocol.envelope import Envelope
from service.protocol.keys import SigningKey, generate_private_key, write_private_key

NOW = 1_795_000_000  # 2026-11-18T...Z, a fixed instant for tests
AUDITOR_TOKEN = "test-auditor-token-000000000000000000000"
OPERATOR_TOKEN = "test-operator-token-00000000000000000000"
CLIENT_TOKEN = "test-client-token-0000000000000000000000"
PRIVACY_TOKEN = "test-privacy-token-000000000000000000000"

AGREEMENTS: list[dict[str, Any]] = [
    {
        "id": "kz-uz-2019",
        "title": "Agreement between Kazakhstan and Uzbekistan on migration information exchange",
        "parties": ["KZ", "UZ"],
        "signed": "2019-04-15",
        "in_force": "2020-05-22",
        "ends": None,
        "covers": [
            {"types": ["statistics.migration-flows"], "purposes": ["statistics"]},
            {
                "types": ["citizenship.verification-request", "citizenship.verification-response"],
                "purposes": ["identity-verification"],
            },
            {"types": ["migration.violation-notice"], "purposes": ["illegal-migration-control"]},
            {"types": ["readmission.request", "readmission.response"], "purposes": ["readmission"]},
        ],
    },
    {
        "id": "kz-kg-2019",
        "title": "Agreement between Kazakhstan and Kyrgyzstan (pending ratification)",
        "parties": ["KZ", "KG"],
        "signed": "2019-11-27",
        "in_force": "2027-07-01",
        "ends": None,
        "covers": [{"types": ["statistics.migration-flows"], "purposes": ["statistics"]}],
    },
]


@dataclass
class Party:
    party: str
    kid: str
    key: SigningKey
    key_file: Path

    def sign(self, env: Envelope, *, alg: str | None = None) -> bytes:
        return jws.sign_compact(self.key, envelope.encode_payload(env), alg=alg)


def make_party(tmp: Path, party: str, *, kind: str = "ed25519", label: str = "2026-01") -> Party:
    kid = f"{party}#{label}"
    private = generate_private_key("ed25519" if kind == "ed25519" else "p256")
    path = tmp / f"{party.replace(':', '_')}_{label}.pem"
    write_private_key(path, private)
    return Party(party, kid, SigningKey(kid, private), path)


@dataclass
class Federation:
    """A KZ node with partners UZ (Ed25519) and KG (P-256), as files in tmp."""

    tmp: Path
    database_url: str
    kz: Party
    uz: Party
    kg: Party
    overrides: dict[str, Any] = field(default_factory=dict)
    mutate: Callable[[dict[str, Any]], None] | None = None

    def config_dict(self) -> dict[str, Any]:
        inbound_all = [
            "statistics.migration-flows",
        ]
        cfg: dict[str, Any] = {
            "node": {
                "party": self.kz.party,
                "name": "Ministry of Internal Affairs of the Republic of Kazakhstan (test)",
                "signing_keys": [{"kid": self.kz.kid, "file": str(self.kz.key_file)}],
                "active_kid": self.kz.kid,
                "audit_kid": self.kz.kid,
            },
            "database_url": self.database_url,
            "audit": {"checkpoint_interval_seconds": 0},
            "agreements": copy.deepcopy(AGREEMENTS),
            "partners": [
                {
                    "party": self.uz.party,
                    "name": "Ministry of Internal Affairs of Uzbekistan (test)",
                    "endpoint": "http://127.0.0.1:9",
                    "keys": [
                        {
                            "kid": self.uz.kid,
                            "jwk": self.uz.key.public().jwk(),
                            "algs": ["Ed25519", "EdDSA"],
                        }
                    ],
                    "rate_limit": {"per_second": 1000, "burst": 1000},
                    "rules": [
                        {
                            "id": "uz-in-statistics",
                            "direction": "inbound",
                            "types": inbound_all,
                            "agreements": ["kz-uz-2019"],
                            "purposes": ["statistics"],
                        },
                        {
                            "id": "uz-in-verification",
                            "direction": "inbound",
                            "types": ["citizenship.verification-request"],
                            "agreements": ["kz-uz-2019"],
                            "purposes": ["identity-verification"],
                        },
                        {
                            "id": "uz-out-statistics",
                            "direction": "outbound",
                            "types": ["statistics.migration-flows"],
                            "agreements": ["kz-uz-2019"],
                            "purposes": ["statistics"],
                            "fields": ["*"],
                        },
                    ],
                },
                {
                    "party": self.kg.party,
                    "name": "State Registration Service of Kyrgyzstan (test)",
                    "endpoint": "http://127.0.0.1:9",
                    "keys": [
                        {"kid": self.kg.kid, "jwk": self.kg.key.public().jwk(), "algs": ["ES256"]}
                    ],
                    "rate_limit": {"per_second": 1, "burst": 2},
                    "rules": [
                        {
                            "id": "kg-in-statistics",
                            "direction": "inbound",
                            "types": ["statistics.migration-flows"],
                            "agreements": ["kz-kg-2019"],
                            "purposes": ["statistics"],
                        }
                    ],
                },
            ],
            "tokens": [
                {"name": "auditor-1", "role": "auditor", "sha256": hash_token(AUDITOR_TOKEN)},
                {"name": "operator-1", "role": "operator", "sha256": hash_token(OPERATOR_TOKEN)},
                {"name": "client-1", "role": "client", "sha256": hash_token(CLIENT_TOKEN)},
                {"name": "privacy-1", "role": "privacy", "sha256": hash_token(PRIVACY_TOKEN)},
            ],
        }
        _merge(cfg, self.overrides)
        if self.mutate is not None:
            self.mutate(cfg)
        return cfg

    def partner(self, cfg: dict[str, Any], party: str) -> dict[str, Any]:
        found: dict[str, Any] = next(p for p in cfg["partners"] if p["party"] == party)
        return found

    def write_config(self) -> Path:
        path = self.tmp / "kz.yaml"
        path.write_text(yaml.safe_dump(self.config_dict(), sort_keys=False))
        return path


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def envelope_for(
    sender: Party,
    *,
    aud: str = "KZ:MIA",
    msg_type: str = "citizenship.verification-request",
    agreement: str = "kz-uz-2019",
    purpose: str = "identity-verification",
    body: dict[str, Any] | None = None,
    iat: int = NOW,
    msg_id: str | None = None,
    reply_to: str | None = None,
) -> Envelope:
    return Envelope(
        v=1,
        id=msg_id or str(uuid.uuid4()),
        iss=sender.party,
        aud=aud,
        iat=iat,
        type=msg_type,
        agreement=agreement,
        purpose=purpose,
        reply_to=reply_to,
        body=body if body is not None else example_body(msg_type),
    )


def example_body(msg_type: str) -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "schemas" / "examples" / f"{msg_type}.json"
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def outbox_statistics(**kw: Any) -> dict[str, Any]:
    """A `POST /v1/outbox` request: the example statistics dataset for UZ:MIA; `kw` overrides."""
    return {
        "to": "UZ:MIA",
        "type": "statistics.migration-flows",
        "agreement": "kz-uz-2019",
        "purpose": "statistics",
        "body": example_body("statistics.migration-flows"),
        **kw,
    }
