"""A migex node witnesses a log run by the independent C2SP code.

The log (tests/interop/c2sp/witnessing.py: its own keys, tree and checkpoint
signing) is configured as an extra log of the node's `witness` section and submits
to `POST /v1/witness/add-checkpoint`; the independent code verifies the migex
cosignatures with the node's published witness key, and sees every status the
specification lists. The other direction, the independent witness cosigning a migex
log, is tests/integration/test_delivery_proofs.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.interop.c2sp import notes
from tests.interop.c2sp.witnessing import TinyLog
from tests.support.nodes import NOW, Federation, Party, make_party

URL = "/v1/witness/add-checkpoint"
ORIGIN = "example.org/independent-log"


@pytest.fixture
def log() -> TinyLog:
    tiny = TinyLog(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39))))
    for i in range(9):
        tiny.append(f"independent entry {i}".encode())
    return tiny


@pytest.fixture
def witness_party(federation: Federation) -> Party:
    return make_party(federation.tmp / "keys", "KZ:MIA", label="witness")


@pytest.fixture
def witness_key(witness_party: Party) -> notes.VerifierKey:
    private = witness_party.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return notes.VerifierKey.for_key(
        "migex/KZ:MIA/witness", notes.TYPE_COSIGNATURE_V1, private.public_key()
    )


@pytest.fixture
def node(
    federation: Federation,
    client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient],
    log: TinyLog,
    witness_party: Party,
) -> TestClient:
    party = witness_party

    def mutate(cfg: dict[str, Any]) -> None:
        cfg["node"]["signing_keys"].append({"kid": party.kid, "file": str(party.key_file)})
        cfg["node"]["witness_kid"] = party.kid
        cfg["witness"] = {"logs": [{"origin": ORIGIN, "vkeys": [str(log.vkey)]}]}

    return client_factory(mutate)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_migex_cosigns_an_independent_log_and_the_cosignature_verifies(
    node: TestClient, log: TinyLog, witness_key: notes.VerifierKey
) -> None:
    line, timestamp = log.witness(node, URL, witness_key, old=0)
    assert timestamp == NOW
    for i in range(5):
        log.append(f"later entry {i}".encode())
    # The log asks from size 0 again: the node's 409 names the size it cosigned.
    second, _ = log.witness(node, URL, witness_key, old=0)
    note = log.checkpoint() + second
    _, verified = notes.verify_note(note, [log.vkey, witness_key])
    assert verified[str(witness_key)] == NOW
    assert line.startswith("\u2014 migex/KZ:MIA/witness ")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_status_the_specification_lists(node: TestClient, log: TinyLog) -> None:
    stranger = TinyLog("example.org/unknown-log")
    stranger.append(b"x")
    assert stranger.submit(node, URL, 0).status == 404
    impostor = TinyLog(ORIGIN)
    impostor.leaves = list(log.leaves)
    assert impostor.submit(node, URL, 0).status == 403
    assert log.submit(node, URL, 10).status == 400
    assert log.submit(node, URL, 0, size=4).status == 200
    conflict = log.submit(node, URL, 0)
    assert (conflict.status, conflict.content_type, conflict.body) == (
        409,
        "text/x.tlog.size",
        "4\n",
    )
    forked = TinyLog(ORIGIN, private=log.private)
    forked.leaves = [*log.leaves[:3], b"rewritten", *log.leaves[4:]]
    assert forked.submit(node, URL, 4).status == 422
    same_size_other_root = forked.submit(node, URL, 4, size=4)
    assert same_size_other_root.status == 422
    assert log.submit(node, URL, 4).status == 200
