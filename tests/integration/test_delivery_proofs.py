"""Protocol v1.1 end to end, in one process: KZ delivers to UZ, UZ's checkpoint is
witnessed by KZ (a migex witness) and TJ (the independent C2SP witness of
tests/interop), UZ sends KZ its delivery proofs, and KZ ends up holding a verified
`.tlog-proof` that `migex audit prove-delivery` checks offline. Then UZ rewrites
its log without that exchange, and KZ's proof contradicts every rewritten checkpoint.

KZ and UZ are real nodes (their apps, databases, group commit, delivery workers and
witnessing tasks); they reach each other through their ASGI apps, and reach the
independent witness over loopback HTTP.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from service.api.tokens import hash_token
from service.audit import merkle
from service.audit.checkpoint import parse_checkpoint_text
from service.audit.note import split_note, verifier_key
from service.cli import app as cli
from service.clock import FixedClock
from service.config import load_config
from service.db.engine import create_engines
from service.db.tables import audit_entries
from service.main import create_app
from service.witness.cosignature import CosignerKey
from service.witness.protocol import render_request
from service.witness.tlogproof import MEDIA_TYPE, parse_proof
from tests.interop.c2sp import notes as c2sp_notes
from tests.interop.c2sp import proofs as c2sp_proofs
from tests.interop.c2sp.witnessing import TinyWitness
from tests.support.nodes import (
    AGREEMENTS,
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    NOW,
    Federation,
    Party,
    make_party,
    outbox_statistics,
)
from tests.support.processes import poll
from tests.support.tlog import MemoryLog

CLIENT = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
PROOFS_COVER = {"types": ["audit.inclusion-proofs"], "purposes": ["audit"]}


class Router(httpx.AsyncBaseTransport):
    """Sends kz.test and uz.test to the nodes' apps, anything else over the network."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.AsyncBaseTransport] = {}
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.apps.get(request.url.host, self.network)
        return await target.handle_async_request(request)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def agreements() -> list[dict[str, Any]]:
    found = copy.deepcopy(AGREEMENTS)
    next(a for a in found if a["id"] == "kz-uz-2019")["covers"].append(PROOFS_COVER)
    return found


def proofs_rule(rule_id: str, direction: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "direction": direction,
        "types": ["audit.inclusion-proofs"],
        "agreements": ["kz-uz-2019"],
        "purposes": ["audit"],
    }
    if direction == "outbound":
        rule["fields"] = ["*"]
    return rule


def log_vkey(party: Party) -> str:
    private = party.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return verifier_key(f"migex/{party.party}", private.public_key())


def witness_vkey(party: Party) -> str:
    private = party.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return CosignerKey(f"migex/{party.party.split('#')[0]}/witness", private.public_key()).vkey


@dataclass
class Pair:
    kz: TestClient
    uz: TestClient
    tj: TinyWitness
    tj_url: str
    policy: Path  # KZ's policy for UZ's log
    fed: Federation
    uz_db: str


def uz_config(fed: Federation, tmp: Path, uz_db: str, own_policy: Path) -> dict[str, Any]:
    kz_policy = tmp / "uz-views-kz.policy"
    kz_policy.write_text(f"log {log_vkey(fed.kz)}\nquorum none\n")
    return {
        "node": {
            "party": fed.uz.party,
            "name": "Ministry of Internal Affairs of Uzbekistan (test)",
            "signing_keys": [{"kid": fed.uz.kid, "file": str(fed.uz.key_file)}],
            "active_kid": fed.uz.kid,
            "audit_kid": fed.uz.kid,
        },
        "database_url": uz_db,
        "audit": {"checkpoint_interval_seconds": 0},
        "agreements": agreements(),
        "partners": [
            {
                "party": fed.kz.party,
                "name": "Ministry of Internal Affairs of Kazakhstan (test)",
                "endpoint": "http://kz.test",
                "keys": [{"kid": fed.kz.kid, "jwk": fed.kz.key.public().jwk()}],
                "rules": [
                    {
                        "id": "kz-in-statistics",
                        "direction": "inbound",
                        "types": ["statistics.migration-flows"],
                        "agreements": ["kz-uz-2019"],
                        "purposes": ["statistics"],
                    },
                    proofs_rule("kz-out-proofs", "outbound"),
                ],
                "delivery_proofs": {"agreement": "kz-uz-2019", "policy_file": str(kz_policy)},
            }
        ],
        "witnessed_by": {"policy_file": str(own_policy)},
        "tokens": [
            {"name": "auditor-1", "role": "auditor", "sha256": hash_token(AUDITOR_TOKEN)},
        ],
    }


@pytest.fixture
def pair(tmp_path: Path, federation: Federation) -> Iterator[Pair]:
    fed = federation
    keys = tmp_path / "keys"
    kz_witness = make_party(keys, "KZ:MIA", label="witness")
    tj = TinyWitness(
        "migex/TJ:MIA/witness",
        {"migex/UZ:MIA": c2sp_notes.VerifierKey.parse(log_vkey(fed.uz))},
        lambda: NOW,
    )
    tj_url = tj.start()
    witnesses = (
        f"witness KZ {witness_vkey(kz_witness)} http://kz.test/v1/witness\n"
        f"witness TJ {tj.vkey} {tj_url}\n"
        "group partners 2 KZ TJ\nquorum partners\n"
    )
    uz_own = tmp_path / "uz-own.policy"
    uz_own.write_text(f"log {log_vkey(fed.uz)}\n{witnesses}")
    kz_view = tmp_path / "kz-views-uz.policy"
    kz_view.write_text(f"log {log_vkey(fed.uz)}\n{witnesses}")

    def kz_mutate(cfg: dict[str, Any]) -> None:
        cfg["node"]["signing_keys"].append(
            {"kid": kz_witness.kid, "file": str(kz_witness.key_file)}
        )
        cfg["node"]["witness_kid"] = kz_witness.kid
        cfg["agreements"] = agreements()
        uz = fed.partner(cfg, fed.uz.party)
        uz["endpoint"] = "http://uz.test"
        uz["rules"].append(proofs_rule("uz-in-proofs", "inbound"))
        uz["delivery_proofs"] = {"agreement": "kz-uz-2019", "policy_file": str(kz_view)}

    fed.mutate = kz_mutate
    uz_db = f"sqlite:///{tmp_path / 'uz.db'}"
    uz_path = tmp_path / "uz.yaml"
    uz_path.write_text(yaml.safe_dump(uz_config(fed, tmp_path, uz_db, uz_own), sort_keys=False))
    clock = FixedClock(float(NOW))
    router = Router()
    kz_app = create_app(load_config(fed.write_config()), clock=clock, transport=router)
    uz_app = create_app(load_config(uz_path), clock=clock, transport=router)
    router.apps = {"kz.test": httpx.ASGITransport(kz_app), "uz.test": httpx.ASGITransport(uz_app)}
    try:
        with TestClient(kz_app) as kz, TestClient(uz_app) as uz:
            yield Pair(kz, uz, tj, tj_url, kz_view, fed, uz_db)
    finally:
        tj.stop()


def held_proof(pair: Pair, message_id: str) -> str:
    def ready() -> dict[str, Any] | None:
        status = pair.kz.get(f"/v1/outbox/{message_id}", headers=CLIENT).json()
        proof: dict[str, Any] | None = status["delivery_proof"]
        return proof

    state = poll(ready, timeout=30, what="KZ holds a delivery proof", interval=0.05)
    resp = pair.kz.get(f"/v1/outbox/{message_id}/proof", headers=CLIENT)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(MEDIA_TYPE)
    assert f'filename="{message_id}.tlog-proof"' in resp.headers["content-disposition"]
    assert parse_proof(resp.text).index == state["index"]
    return resp.text


def send(pair: Pair) -> str:
    resp = pair.kz.post("/v1/outbox", json=outbox_statistics(), headers=CLIENT)
    assert resp.status_code == 202, resp.text
    message_id: str = resp.json()["id"]
    return message_id


def test_sender_holds_a_witnessed_proof_that_verifies_offline(pair: Pair, tmp_path: Path) -> None:
    message_id = send(pair)
    assert pair.kz.get(f"/v1/outbox/{message_id}/proof", headers=CLIENT).status_code == 404
    text = held_proof(pair, message_id)
    status = pair.kz.get(f"/v1/outbox/{message_id}", headers=CLIENT).json()
    assert status["status"] == "delivered"
    assert status["delivery_proof"]["index"] == status["receipt"]["partner_audit_index"]

    # The node consumed the proofs message: the agency's inbox shows it only on request.
    inbox = pair.kz.get("/v1/inbox", headers=CLIENT).json()["messages"]
    assert all(m["type"] != "audit.inclusion-proofs" for m in inbox)
    asked = pair.kz.get("/v1/inbox?type=audit.inclusion-proofs", headers=CLIENT).json()
    assert [m["from"] for m in asked["messages"]] == ["UZ:MIA"]

    metrics = pair.kz.get("/metrics").text
    assert 'migex_delivery_proofs_held{partner="UZ:MIA"} 1.0' in metrics
    assert 'migex_delivery_proofs_awaited{partner="UZ:MIA"} 0.0' in metrics
    assert 'migex_partner_log_forks{partner="UZ:MIA"} 0.0' in metrics

    # The independent C2SP client verifies it with the pinned keys: 2 of KZ and TJ.
    bundle = c2sp_proofs.parse(text)
    assert bundle.extra is not None
    witnesses = [
        c2sp_notes.VerifierKey.parse(line.split()[2])
        for line in pair.policy.read_text().splitlines()
        if line.startswith("witness ")
    ]
    cp = c2sp_proofs.verify(
        text, bundle.extra, c2sp_notes.VerifierKey.parse(log_vkey(pair.fed.uz)), witnesses, 2
    )
    assert cp.origin == "migex/UZ:MIA"

    # migex audit prove-delivery: offline, with the policy file alone.
    path = tmp_path / f"{message_id}.tlog-proof"
    path.write_text(text)
    result = CliRunner().invoke(
        cli, ["audit", "prove-delivery", str(path), "--policy", str(pair.policy)]
    )
    assert result.exit_code == 0, result.output
    assert f"UZ:MIA logged message {message_id} from KZ:MIA" in result.stdout
    assert "cosigned by KZ at" in result.stdout
    assert "TJ at" in result.stdout


def follow_409(post: Any, forged: MemoryLog, old: int, size: int) -> int:
    """Submit the forged checkpoint from ``old``, once more from the size a 409 names."""
    answer = post(render_request(old, forged.proof(old, size), forged.checkpoint(size)))
    if answer.status_code == 409:
        old = int(answer.text)
        answer = post(render_request(old, forged.proof(old, size), forged.checkpoint(size)))
    status: int = answer.status_code
    return status


def test_a_rewritten_log_contradicts_the_stored_proof(pair: Pair) -> None:
    message_id = send(pair)
    proof = parse_proof(held_proof(pair, message_id))
    proven = parse_checkpoint_text(split_note(proof.checkpoint)[0])
    assert proof.extra is not None

    # UZ's administrator rebuilds the log from its entries without KZ's exchange and
    # re-signs it with UZ's own key: every other entry byte for byte.
    engines = create_engines(pair.uz_db)
    with engines.reader.connect() as conn:
        leaves = [
            bytes(r.leaf_data)
            for r in conn.execute(select(audit_entries.c.leaf_data).order_by(audit_entries.c.idx))
        ]
    engines.dispose()
    assert proof.extra in leaves
    private = pair.fed.uz.key.private
    assert isinstance(private, Ed25519PrivateKey)
    forged = MemoryLog("migex/UZ:MIA", private, [leaf for leaf in leaves if leaf != proof.extra])
    size = len(leaves) + 1
    forged.grow(size, tag=" (rewritten)")

    # The proof's checkpoint, signed by UZ and cosigned by KZ and TJ, is not a prefix of
    # the rewritten log: the consistency proof UZ can give fails.
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(
            proven.size, size, proven.root, forged.root(size), forged.proof(proven.size, size)
        )
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(
            proof.index, size, merkle.leaf_hash(proof.extra), proof.path, forged.root(size)
        )

    # Both witnesses refuse to cosign the rewritten checkpoint, so it never meets the
    # policy: KZ (migex) and TJ (the independent implementation).
    def post_kz(body: bytes) -> httpx.Response:
        return pair.kz.post("/v1/witness/add-checkpoint", content=body)

    def post_tj(body: bytes) -> httpx.Response:
        return httpx.post(f"{pair.tj_url}/add-checkpoint", content=body)

    assert follow_409(post_kz, forged, proven.size, size) == 422
    assert follow_409(post_tj, forged, proven.size, size) == 422
