"""What auditors are told: the policy met or not, and an export against earlier cosigned
checkpoints (consistent for the same log, INCONSISTENT for a rewritten one)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import verifier_key
from service.audit.store import leaf_bytes
from service.witness.auditing import cosigned_findings, policy_finding
from service.witness.cosignature import CosignerKey, cosign
from service.witness.policy import parse_policy
from tests.support.tlog import MemoryLog

ORIGIN = "migex/KZ:MIA"
WITNESS = Ed25519PrivateKey.generate()
POLICY = parse_policy(
    f"witness uz {CosignerKey('uz.example', WITNESS.public_key()).vkey}\nquorum uz\n"
)


def entry(index: int, tag: str = "") -> bytes:
    fields = ("time", "node", "event", "outcome", "party", "from", "to", "message_id")
    fields += ("type", "agreement", "purpose", "code", "rule", "digest")
    data: dict[str, object] = dict.fromkeys(fields)
    data.update(index=index, time="2026-12-01T00:00:00Z", node="KZ:MIA", event="e" + tag)
    data.update(outcome="ok", detail={})
    return leaf_bytes(data)


def export(log: MemoryLog) -> Iterator[bytes]:
    for index, leaf in enumerate(log.leaves):
        item = {"index": index, "leaf_data": base64.b64encode(leaf).decode()}
        item["entry"] = json.loads(leaf)
        yield json.dumps(item).encode() + b"\n"


def cosigned(log: MemoryLog, size: int) -> str:
    note = log.checkpoint(size)
    body = note.split("\n\n", 1)[0] + "\n"
    return note + cosign(body, "uz.example", WITNESS, 1)


def make_log(tag: str = "") -> MemoryLog:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    return MemoryLog(ORIGIN, key, [entry(i, tag if i >= 3 else "") for i in range(8)])


def test_policy_met_names_the_cosigners() -> None:
    finding = policy_finding(POLICY, cosigned(make_log(), 8))
    assert finding.ok
    assert finding.text == "the checkpoint meets the witness policy: cosigned by uz"


def test_policy_not_met_without_cosignature() -> None:
    finding = policy_finding(POLICY, make_log().checkpoint(8))
    assert not finding.ok
    assert "does NOT meet" in finding.text


def test_an_export_of_the_same_log_is_consistent_with_what_a_witness_cosigned() -> None:
    log = make_log()
    vkey = verifier_key(ORIGIN, log.key.public_key())
    [finding] = cosigned_findings(lambda: export(log), vkey, [("uz", cosigned(log, 5))], POLICY)
    assert finding.ok
    assert finding.text == "consistent with the checkpoint of size 5 cosigned by uz"


def test_a_rewritten_export_is_inconsistent_with_what_a_witness_cosigned() -> None:
    honest, rewritten = make_log(), make_log(tag="-rewritten")
    vkey = verifier_key(ORIGIN, honest.key.public_key())
    [finding] = cosigned_findings(
        lambda: export(rewritten), vkey, [("uz", cosigned(honest, 5))], POLICY
    )
    assert not finding.ok
    assert finding.text.startswith("INCONSISTENT with the checkpoint of size 5 cosigned by uz")
