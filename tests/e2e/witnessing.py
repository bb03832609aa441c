"""The four-country federation of tests/e2e/federation.py with fast witnessing.

The docker configs already witness: each node has a witness key (keys-init writes
it into its secrets directory), witnesses its partners' logs (every other node is
its partner) and names the other three as the witnesses of its own log: 2 of 3.
Here each node's policy file is made by the test, with loopback URLs and a quorum
of its choice, and the submissions time out and back off quickly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.audit.checkpoint import log_origin
from service.audit.note import verifier_key
from service.protocol.keys import load_signing_key, public_key_from_jwk
from service.witness.cosignature import CosignerKey
from tests.e2e.federation import NODES, PARTY, local_config

WITNESS_TIMING = {"timeout_seconds": 2, "backoff_initial_seconds": 0.2, "backoff_max_seconds": 1}


@dataclass(frozen=True)
class WitnessKeys:
    """Per node: the witness verifier key and the audit (checkpoint) verifier key."""

    witness: dict[str, str]
    audit: dict[str, str]


def make_witness_keys(tmp: Path) -> WitnessKeys:
    """The verifier keys of the keys that keys-init (`federation.init_keys`) wrote."""
    witness: dict[str, str] = {}
    audit: dict[str, str] = {}
    for name in NODES:
        party = PARTY[name]
        key_file = tmp / "secrets" / name / f"{name}_witness_key"
        private = load_signing_key(key_file, f"{party}#witness-2026-01").private
        assert isinstance(private, Ed25519PrivateKey)
        witness[name] = CosignerKey(f"migex/{party}/witness", private.public_key()).vkey
        jwk = json.loads((tmp / "public" / f"{name}.jwk.json").read_text())
        public = public_key_from_jwk(jwk, kid=jwk["kid"]).key
        assert isinstance(public, Ed25519PublicKey)
        audit[name] = verifier_key(log_origin(party), public)
    return WitnessKeys(witness, audit)


def policy_text(name: str, keys: WitnessKeys, ports: Mapping[str, int], quorum: int = 2) -> str:
    """The policy of ``name``'s log: its own log key and the other three nodes, k of 3."""
    others = [n for n in NODES if n != name]
    lines = [f"log {keys.audit[name]}"]
    lines += [
        f"witness {n} {keys.witness[n]} http://127.0.0.1:{ports[n]}/v1/witness" for n in others
    ]
    lines += [f"group partners {quorum} {' '.join(others)}", "quorum partners", ""]
    return "\n".join(lines)


def witnessing_config(
    name: str, keys: WitnessKeys, ports: Mapping[str, int], database: Path, policy: Path
) -> str:
    """docker/config/<name>.yaml on loopback (see federation.local_config), witnessed
    under the policy file `policy`, with fast timing."""
    cfg: dict[str, Any] = yaml.safe_load(local_config(name, ports, database))
    partners = {p["party"] for p in cfg["partners"]}
    cfg["witness"] = {
        "logs": [
            {"origin": log_origin(PARTY[n]), "vkeys": [keys.audit[n]]}
            for n in NODES
            if n != name and PARTY[n] not in partners
        ]
    }
    cfg["witnessed_by"] = {"policy_file": str(policy), **WITNESS_TIMING}
    text: str = yaml.safe_dump(cfg, sort_keys=False)
    return text
