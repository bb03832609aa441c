"""Protocol v1.1 in the four-country federation: four `migex serve` processes on
loopback, witnessing each other 2 of 3 (tests/e2e/witnessing.py), with KZ and UZ
speaking v1.1 to each other (`delivery_proofs`, the agreement's cover for
`audit.inclusion-proofs`, and the access rules both ways).

KZ delivers a dataset to UZ; once UZ's checkpoint meets its policy, UZ sends KZ the
proof; KZ serves the `.tlog-proof`, which `migex audit prove-delivery` verifies
offline with KZ's policy for UZ's log and nothing else. After UZ rewrites its log
without that exchange, the proof contradicts every rewritten checkpoint.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit import merkle
from service.audit.checkpoint import parse_checkpoint_text
from service.audit.note import split_note
from service.protocol.b64 import b64_decode
from service.protocol.keys import load_signing_key
from service.witness.tlogproof import parse_proof
from tests.e2e.federation import NODES, PARTY, Agency, init_keys, node_env, running
from tests.e2e.witnessing import make_witness_keys, policy_text, witnessing_config
from tests.interop.c2sp import notes as c2sp_notes
from tests.interop.c2sp import proofs as c2sp_proofs
from tests.support.nodes import example_body
from tests.support.processes import NodeProcess, child_environment, free_ports, migex_command, poll
from tests.support.tlog import MemoryLog

pytestmark = pytest.mark.slow

STATISTICS = "statistics.migration-flows"
V1_1 = {"kz": "uz", "uz": "kz"}  # the pair that speaks protocol v1.1


def speak_v1_1(text: str, name: str, view_policy: Path) -> str:
    """Add delivery proofs with the other node of the pair to ``name``'s configuration."""
    cfg: dict[str, Any] = yaml.safe_load(text)
    other = PARTY[V1_1[name]]
    agreement = next(a for a in cfg["agreements"] if a["id"] == "kz-uz-2019")
    agreement["covers"].append({"types": ["audit.inclusion-proofs"], "purposes": ["audit"]})
    partner = next(p for p in cfg["partners"] if p["party"] == other)
    common = {"types": ["audit.inclusion-proofs"], "agreements": ["kz-uz-2019"]}
    partner["rules"] += [
        {"id": "proofs-in", "direction": "inbound", **common, "purposes": ["audit"]},
        {"id": "proofs-out", "direction": "outbound", **common, "purposes": ["audit"]}
        | {"fields": ["*"]},
    ]
    partner["delivery_proofs"] = {"agreement": "kz-uz-2019", "policy_file": str(view_policy)}
    out: str = yaml.safe_dump(cfg, sort_keys=False)
    return out


@dataclass
class Fed:
    tmp: Path
    processes: dict[str, NodeProcess]
    policy_files: dict[str, Path]

    def __getitem__(self, name: str) -> Agency:
        return Agency(name, self.processes[name].url)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    tmp = tmp_path_factory.mktemp("delivery-proofs")
    init_keys(tmp / "secrets", tmp / "public")
    keys = make_witness_keys(tmp)
    ports = dict(zip(NODES, free_ports(len(NODES)), strict=True))
    processes: dict[str, NodeProcess] = {}
    policy_files: dict[str, Path] = {}
    for name in NODES:
        policy = tmp / f"{name}.policy"
        policy.write_text(policy_text(name, keys, ports))
        policy_files[name] = policy
    for name in NODES:
        text = witnessing_config(name, keys, ports, tmp / f"{name}.db", policy_files[name])
        if name in V1_1:
            text = speak_v1_1(text, name, policy_files[V1_1[name]])
        path = tmp / f"{name}.yaml"
        path.write_text(text)
        processes[name] = NodeProcess(
            name, path, port=ports[name], env=node_env(tmp, name), log_dir=tmp / "logs"
        )
    with running(processes):
        yield Fed(tmp, processes, policy_files)


def client_get(agency: Agency, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {agency.name}-client-dev-token"}
    return httpx.get(f"{agency.url}{path}", headers=headers)


def held_proof(fed: Fed, message_id: str) -> str:
    kz = fed["kz"]

    def ready() -> dict[str, Any] | None:
        proof: dict[str, Any] | None = kz.status(message_id)["delivery_proof"]
        return proof

    poll(ready, timeout=60, what="KZ holds UZ's delivery proof")
    resp = client_get(kz, f"/v1/outbox/{message_id}/proof")
    assert resp.status_code == 200, resp.text
    return resp.text


def deliver(fed: Fed) -> str:
    kz = fed["kz"]
    accepted = kz.queue(
        to=PARTY["uz"],
        type=STATISTICS,
        agreement="kz-uz-2019",
        purpose="statistics",
        body=example_body(STATISTICS),
    )
    message_id = str(accepted["id"])
    kz.delivered(message_id)
    return message_id


def test_kz_holds_a_proof_that_verifies_offline_with_the_policy_alone(fed: Fed) -> None:
    message_id = deliver(fed)
    text = held_proof(fed, message_id)
    path = fed.tmp / f"{message_id}.tlog-proof"
    path.write_text(text)
    result = subprocess.run(
        [
            *migex_command(),
            "audit",
            "prove-delivery",
            str(path),
            "--policy",
            str(fed.policy_files["uz"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_environment(None),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"UZ:MIA logged message {message_id} from KZ:MIA" in result.stdout
    assert "the checkpoint meets the witness policy" in result.stdout

    # The independent client agrees, with UZ's key and 2 of the other three witnesses.
    policy = fed.policy_files["uz"].read_text().splitlines()
    log = c2sp_notes.VerifierKey.parse(policy[0].split()[1])
    witnesses = [
        c2sp_notes.VerifierKey.parse(line.split()[2])
        for line in policy
        if line.startswith("witness ")
    ]
    bundle = c2sp_proofs.parse(text)
    assert bundle.extra is not None
    assert c2sp_proofs.verify(text, bundle.extra, log, witnesses, 2).origin == "migex/UZ:MIA"


def test_a_rewritten_uz_log_contradicts_kz_s_proof(fed: Fed) -> None:
    message_id = deliver(fed)
    proof = parse_proof(held_proof(fed, message_id))
    proven = parse_checkpoint_text(split_note(proof.checkpoint)[0])
    assert proof.extra is not None
    export = fed["uz"].audit_get("/v1/audit/export").text.splitlines()
    leaves = [parse_leaf(line) for line in export]
    assert proof.extra in leaves
    key = load_signing_key(fed.tmp / "secrets" / "uz" / "uz_signing_key", "UZ:MIA#2026-01")
    private = key.private
    assert isinstance(private, Ed25519PrivateKey)
    forged = MemoryLog("migex/UZ:MIA", private, [leaf for leaf in leaves if leaf != proof.extra])
    size = len(leaves) + 1
    forged.grow(size, tag=" (rewritten)")
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(
            proven.size, size, proven.root, forged.root(size), forged.proof(proven.size, size)
        )
    # The witnesses' refusals of such a log are tests/e2e/test_witnessing.py's.


def parse_leaf(line: str) -> bytes:
    return b64_decode(json.loads(line)["leaf_data"])
