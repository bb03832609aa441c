"""A partner's `audit.inclusion-proofs` messages at the sender: accepted like any
message, then checked against the policy for the partner's log; proofs of unknown
messages are refused in the audit log, and a checkpoint that does not extend the one
verified before is kept as evidence of a fork."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.audit import store
from service.config import ConfigError, load_config
from service.protocol.b64 import b64_encode
from service.witness.outflow import accepted_entries
from tests.interop.c2sp import tree as c2sp_tree
from tests.support.nodes import AUDITOR_TOKEN, Federation, envelope_for
from tests.support.processes import poll
from tests.unit.witness.test_tlogproof import LEAVES, POLICY_TEXT, checkpoint_note

Mutate = Callable[[dict[str, Any]], None]
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
FORKED = [*LEAVES[:2], b'{"rewritten":true}', *LEAVES[3:], b'{"later":1}', b'{"later":2}']


def proofs_partner(federation: Federation, policy: Path) -> Mutate:
    def mutate(cfg: dict[str, Any]) -> None:
        agreement = next(a for a in cfg["agreements"] if a["id"] == "kz-uz-2019")
        agreement["covers"].append({"types": ["audit.inclusion-proofs"], "purposes": ["audit"]})
        uz = federation.partner(cfg, "UZ:MIA")
        uz["rules"].append(
            {
                "id": "uz-in-proofs",
                "direction": "inbound",
                "types": ["audit.inclusion-proofs"],
                "agreements": ["kz-uz-2019"],
                "purposes": ["audit"],
            }
        )
        uz["delivery_proofs"] = {"agreement": "kz-uz-2019", "policy_file": str(policy)}

    return mutate


@pytest.fixture
def node(federation: Federation, client_factory: Callable[[Mutate], TestClient]) -> TestClient:
    policy = federation.tmp / "uz.policy"
    policy.write_text(POLICY_TEXT)
    return client_factory(proofs_partner(federation, policy))


def body(leaves: list[bytes], previous: int, index: int) -> dict[str, Any]:
    return {
        "checkpoint": checkpoint_note((1, 2), leaves),
        "previous_size": previous,
        "consistency": [b64_encode(h) for h in c2sp_tree.proof(previous, leaves)]
        if 0 < previous < len(leaves)
        else [],
        "proofs": [
            {
                "index": index,
                "message_id": json.loads(LEAVES[3])["message_id"],
                "leaf_data": b64_encode(leaves[index]),
                "path": [b64_encode(h) for h in c2sp_tree.path(index, leaves)],
            }
        ],
    }


def send(node: TestClient, federation: Federation, proofs: dict[str, Any]) -> str:
    env = envelope_for(
        federation.uz,
        msg_type="audit.inclusion-proofs",
        purpose="audit",
        body=copy.deepcopy(proofs),
    )
    resp = node.post(
        "/v1/messages",
        content=federation.uz.sign(env),
        headers={"Content-Type": "application/jose"},
    )
    assert resp.status_code == 201, resp.text
    return env.id


def events(node: TestClient, event: str) -> list[dict[str, Any]]:
    resp = node.get("/v1/audit/search", params={"event": event}, headers=AUDITOR)
    found: list[dict[str, Any]] = resp.json()["entries"]
    return found


def test_proofs_of_messages_never_delivered_are_refused_in_the_log(
    node: TestClient, federation: Federation
) -> None:
    message_id = send(node, federation, body(LEAVES, 0, 3))
    stored = poll(lambda: events(node, "proofs.stored"), timeout=20, what="proofs checked")
    assert stored[0]["entry"]["message_id"] == message_id
    assert stored[0]["entry"]["detail"] == {"stored": 0, "invalid": 1, "tree_size": 7}
    [invalid] = events(node, "proofs.invalid")
    assert "no delivered message" in invalid["entry"]["detail"]["reason"]
    assert 'migex_partner_log_verified_size{partner="UZ:MIA"} 7.0' in node.get("/metrics").text


def test_a_checkpoint_that_does_not_extend_the_verified_one_is_kept_as_a_fork(
    node: TestClient, federation: Federation
) -> None:
    send(node, federation, body(LEAVES, 0, 3))
    poll(lambda: events(node, "proofs.stored"), timeout=20, what="first proofs checked")
    forked_id = send(node, federation, body(FORKED, 7, 8))
    [fork] = poll(lambda: events(node, "proofs.inconsistent"), timeout=20, what="fork seen")
    entry = fork["entry"]
    assert (entry["message_id"], entry["party"]) == (forked_id, "UZ:MIA")
    assert "tree size 9 is not an extension of tree size 7" in entry["detail"]["reason"]
    assert entry["detail"]["known_checkpoint"] == checkpoint_note((1, 2), LEAVES)
    assert entry["detail"]["new_checkpoint"] == checkpoint_note((1, 2), FORKED)
    metrics = node.get("/metrics").text
    assert 'migex_partner_log_forks{partner="UZ:MIA"} 1.0' in metrics
    assert 'migex_partner_log_verified_size{partner="UZ:MIA"} 7.0' in metrics


def test_proofs_messages_are_never_proven_back(node: TestClient, federation: Federation) -> None:
    send(node, federation, body(LEAVES, 0, 3))
    poll(lambda: events(node, "proofs.stored"), timeout=20, what="proofs checked")
    engines = node.app.state.node.engines  # type: ignore[attr-defined]
    with engines.reader.connect() as conn:
        size = store.read_head(conn).size
        assert accepted_entries(conn, "UZ:MIA", 0, size) == []


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (None, "cannot read it"),
        ("quorum none\n", "needs a 'log' line with UZ:MIA's checkpoint key"),
        ("quorum nobody\n", "is not defined"),
    ],
)
def test_a_node_with_an_unusable_partner_policy_does_not_start(
    federation: Federation, policy: str | None, reason: str
) -> None:
    """The configuration is refused (as `migex config check` refuses it), naming the
    partner's section, before any node is built."""
    path = federation.tmp / "uz.policy"
    if policy is not None:
        path.write_text(policy)
    federation.mutate = proofs_partner(federation, path)
    with pytest.raises(ConfigError, match=reason) as refused:
        load_config(federation.write_config())
    assert "partners[0].delivery_proofs.policy_file" in str(refused.value)
