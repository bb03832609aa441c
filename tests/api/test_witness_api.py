"""POST /v1/witness/add-checkpoint: every status of C2SP tlog-witness, the stored state,
the evidence kept for an inconsistent checkpoint, and the rate limit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service import cli
from service.audit import merkle
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.note import split_note
from service.protocol.problems import Problem
from service.witness.cosignature import parse_cosigner_vkey, verify_line
from service.witness.protocol import render_request
from service.witness.reset import ResetUnit
from tests.support.nodes import AUDITOR_TOKEN, Federation, make_party
from tests.support.tlog import MemoryLog

URL = "/v1/witness/add-checkpoint"
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
UZ_LOG = "migex/UZ:MIA"

Mutate = Callable[[dict[str, Any]], None]


def as_witness(federation: Federation, **witness: Any) -> Mutate:
    key = make_party(federation.tmp / "keys", "KZ:MIA", label="witness")

    def mutate(cfg: dict[str, Any]) -> None:
        cfg["node"]["signing_keys"].append({"kid": key.kid, "file": str(key.key_file)})
        cfg["node"]["witness_kid"] = key.kid
        if witness:
            cfg["witness"] = witness

    return mutate


@pytest.fixture
def witness(federation: Federation, client_factory: Callable[[Mutate], TestClient]) -> TestClient:
    return client_factory(as_witness(federation))


@pytest.fixture
def uz_log(federation: Federation) -> MemoryLog:
    private = federation.uz.key.private
    assert isinstance(private, Ed25519PrivateKey)
    return MemoryLog(UZ_LOG, private)


def body_of(note: str) -> str:
    return split_note(note)[0]


def test_first_checkpoint_is_cosigned_with_the_published_witness_key(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    resp = witness.post(URL, content=uz_log.request(0, 5))
    assert resp.status_code == 200, resp.text
    vkey = witness.get("/.well-known/migex-witness-key").text.strip()
    key = parse_cosigner_vkey(vkey)
    assert key.name == "migex/KZ:MIA/witness"
    [line] = resp.text.splitlines(keepends=True)
    assert verify_line(body_of(uz_log.checkpoint(5)), line, key) == 1_795_000_000


def test_next_checkpoint_with_a_consistency_proof_is_cosigned(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    assert witness.post(URL, content=uz_log.request(5, 13)).status_code == 200
    assert witness.post(URL, content=uz_log.request(13, 13)).status_code == 200


def test_409_carries_the_latest_cosigned_size(witness: TestClient, uz_log: MemoryLog) -> None:
    never = witness.post(URL, content=uz_log.request(3, 5))
    assert never.status_code == 409
    assert never.headers["content-type"] == "text/x.tlog.size"
    assert never.content == b"0\n"
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    stale = witness.post(URL, content=uz_log.request(0, 9))
    assert (stale.status_code, stale.content) == (409, b"5\n")


def test_400_when_the_old_size_exceeds_the_checkpoint(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    body = render_request(6, [], uz_log.checkpoint(5))
    resp = witness.post(URL, content=body)
    assert resp.status_code == 400
    assert resp.json()["code"] == "bad-request"


@pytest.mark.parametrize(
    "body",
    [b"", b"old 0\n", b"old x\n\nmigex/UZ:MIA\n1\nAA==\n", b"old 0\n\nnot a note\n", b"\xff"],
)
def test_400_for_a_malformed_body(witness: TestClient, body: bytes) -> None:
    resp = witness.post(URL, content=body)
    assert resp.status_code == 400
    assert resp.json()["code"] == "bad-request"


def test_404_for_a_log_it_does_not_witness(witness: TestClient, federation: Federation) -> None:
    other = MemoryLog("migex/TJ:MIA", Ed25519PrivateKey.generate())
    resp = witness.post(URL, content=other.request(0, 2))
    assert resp.status_code == 404
    assert resp.json()["code"] == "unknown-log"


def test_404_for_a_partner_without_an_ed25519_key(witness: TestClient) -> None:
    kg = MemoryLog("migex/KG:SRS", Ed25519PrivateKey.generate())
    assert witness.post(URL, content=kg.request(0, 2)).status_code == 404


def test_404_from_a_node_without_a_witness_key(client: TestClient, uz_log: MemoryLog) -> None:
    assert client.post(URL, content=uz_log.request(0, 2)).status_code == 404
    assert client.get("/.well-known/migex-witness-key").status_code == 404


def test_403_when_no_trusted_key_signed(witness: TestClient, uz_log: MemoryLog) -> None:
    forged = uz_log.checkpoint(5, key=Ed25519PrivateKey.generate())
    resp = witness.post(URL, content=render_request(0, [], forged))
    assert resp.status_code == 403
    assert resp.json()["code"] == "untrusted-checkpoint"


def test_a_trusted_signature_among_unknown_ones_is_enough(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    note = uz_log.checkpoint(5)
    other = sign_checkpoint(
        Checkpoint(UZ_LOG, 5, uz_log.root(5)), "someone.example/key", Ed25519PrivateKey.generate()
    )
    both = other + note.split("\n\n", 1)[1]
    assert witness.post(URL, content=render_request(0, [], both)).status_code == 200


def test_422_for_the_same_size_with_another_root_and_evidence_is_kept(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    rewritten = MemoryLog(UZ_LOG, uz_log.key)
    rewritten.grow(5, tag=" rewritten")
    resp = witness.post(URL, content=render_request(5, [], rewritten.checkpoint(5)))
    assert resp.status_code == 422
    assert resp.json()["code"] == "inconsistent"
    [item] = witness.get("/v1/audit/search?event=witness.inconsistent", headers=AUDITOR).json()[
        "entries"
    ]
    entry = item["entry"]
    assert entry["party"] == "UZ:MIA"
    assert entry["detail"]["submitted"] == rewritten.checkpoint(5)
    # The checkpoint the witness cosigned before, with its cosignature.
    cosigned = entry["detail"]["cosigned"]
    assert cosigned.startswith(uz_log.checkpoint(5))
    key = parse_cosigner_vkey(witness.get("/.well-known/migex-witness-key").text.strip())
    assert verify_line(body_of(cosigned), cosigned.splitlines()[-1], key) == 1_795_000_000
    metrics = witness.get("/metrics").text
    assert 'migex_witnessed_log_inconsistent{origin="migex/UZ:MIA"} 1.0' in metrics
    # The witness still holds the checkpoint it cosigned.
    assert witness.post(URL, content=uz_log.request(5, 8)).status_code == 200


def test_422_when_the_consistency_proof_fails(witness: TestClient, uz_log: MemoryLog) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    rewritten = MemoryLog(UZ_LOG, uz_log.key)
    rewritten.grow(9, tag=" rewritten")
    resp = witness.post(URL, content=rewritten.request(5, 9))
    assert resp.status_code == 422
    bad_proof = render_request(5, [bytes(32)] * 3, uz_log.checkpoint(9))
    assert witness.post(URL, content=bad_proof).status_code == 422
    assert (
        'migex_witnessed_log_inconsistent{origin="migex/UZ:MIA"} 2.0'
        in witness.get("/metrics").text
    )


def test_422_for_a_size_zero_checkpoint_without_the_empty_root(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    bad = sign_checkpoint(Checkpoint(UZ_LOG, 0, bytes(32)), UZ_LOG, uz_log.key)
    assert witness.post(URL, content=render_request(0, [], bad)).status_code == 422
    empty = sign_checkpoint(Checkpoint(UZ_LOG, 0, merkle.EMPTY_ROOT), UZ_LOG, uz_log.key)
    assert witness.post(URL, content=render_request(0, [], empty)).status_code == 200


def test_422_for_a_proof_from_size_zero(witness: TestClient, uz_log: MemoryLog) -> None:
    body = render_request(0, [bytes(32)], uz_log.checkpoint(5))
    assert witness.post(URL, content=body).status_code == 422


def test_429_past_the_rate_limit(
    federation: Federation, client_factory: Callable[[Mutate], TestClient], uz_log: MemoryLog
) -> None:
    client = client_factory(as_witness(federation, rate_limit={"per_second": 0.001, "burst": 2}))
    assert client.post(URL, content=uz_log.request(0, 2)).status_code == 200
    assert client.post(URL, content=uz_log.request(2, 3)).status_code == 200
    resp = client.post(URL, content=uz_log.request(3, 4))
    assert resp.status_code == 429
    assert resp.json()["code"] == "rate-limited"


def test_witnessed_log_size_is_a_metric(witness: TestClient, uz_log: MemoryLog) -> None:
    assert witness.post(URL, content=uz_log.request(0, 7)).status_code == 200
    assert 'migex_witnessed_log_size{origin="migex/UZ:MIA"} 7.0' in witness.get("/metrics").text


def test_only_listed_partners_are_witnessed(
    federation: Federation, client_factory: Callable[[Mutate], TestClient], uz_log: MemoryLog
) -> None:
    client = client_factory(as_witness(federation, partners=["KG:SRS"]))
    assert client.post(URL, content=uz_log.request(0, 2)).status_code == 404


# -- a reset by the witness's operator (a log restored from a backup) ----------------


def test_a_reset_forgets_the_log_openly_and_the_restored_log_is_witnessed_again(
    witness: TestClient, uz_log: MemoryLog
) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    restored = MemoryLog(UZ_LOG, uz_log.key)
    restored.grow(3, tag=" restored")
    before = witness.post(URL, content=restored.request(0, 3))
    assert (before.status_code, before.content) == (409, b"5\n")

    node = witness.app.state.node  # type: ignore[attr-defined]
    reason = "UZ restored its database from the backup of 2026-11-30 (letter 17/2)"
    done = node.committer.run_sync(ResetUnit(UZ_LOG, "cli:operator", reason))

    assert done["forgotten_size"] == 5
    assert witness.post(URL, content=restored.request(0, 3)).status_code == 200
    assert witness.post(URL, content=restored.request(3, 7)).status_code == 200
    # The log it cosigned before the reset is now the one that does not extend.
    assert witness.post(URL, content=uz_log.request(7, 9)).status_code == 422
    [item] = witness.get("/v1/audit/search?event=witness.log-reset", headers=AUDITOR).json()[
        "entries"
    ]
    entry = item["entry"]
    assert entry["party"] == "UZ:MIA"
    assert item["index"] == done["audit_index"]
    assert entry["detail"]["reason"] == reason
    assert entry["detail"]["operator"] == "cli:operator"
    assert entry["detail"]["size"] == "5"
    cosigned = entry["detail"]["cosigned"]
    assert cosigned.startswith(uz_log.checkpoint(5))
    key = parse_cosigner_vkey(witness.get("/.well-known/migex-witness-key").text.strip())
    assert verify_line(body_of(cosigned), cosigned.splitlines()[-1], key) == 1_795_000_000


@pytest.mark.parametrize(
    ("origin", "reason", "code"),
    [
        (UZ_LOG, " ", "invalid-parameters"),
        (UZ_LOG, "two\nlines", "invalid-parameters"),
        (UZ_LOG, "x" * 501, "invalid-parameters"),
        ("migex/TJ:MIA", "restored", "not-found"),
    ],
)
def test_a_reset_without_a_reason_or_of_an_unknown_log_changes_nothing(
    witness: TestClient, uz_log: MemoryLog, origin: str, reason: str, code: str
) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    node = witness.app.state.node  # type: ignore[attr-defined]
    with pytest.raises(Problem) as refused:
        node.committer.run_sync(ResetUnit(origin, "cli:operator", reason))
    assert refused.value.code == code
    assert witness.post(URL, content=uz_log.request(5, 6)).status_code == 200
    search = witness.get("/v1/audit/search?event=witness.log-reset", headers=AUDITOR)
    assert search.json()["entries"] == []


def test_the_cli_resets_a_log(
    witness: TestClient, uz_log: MemoryLog, federation: Federation
) -> None:
    assert witness.post(URL, content=uz_log.request(0, 5)).status_code == 200
    config = str(federation.tmp / "kz.yaml")
    args = ["witness", "reset-log", "-c", config, "--origin", UZ_LOG]
    done = CliRunner().invoke(cli.app, [*args, "--reason", "restored from backup"])
    again = CliRunner().invoke(cli.app, [*args, "--reason", "restored from backup"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["forgotten_size"] == 5
    assert (again.exit_code, "cosigned no checkpoint" in again.output) == (1, True)
