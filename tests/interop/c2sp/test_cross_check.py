"""migex's C2SP code against the independent client, on the same known answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import split_note
from service.witness.cosignature import cosign, parse_cosigner_vkey, signed_message, verify_line
from service.witness.protocol import parse_request, render_request
from service.witness.tlogproof import parse_proof
from tests.interop.c2sp import notes, proofs, witnessing

ASSETS = Path(__file__).parents[2] / "assets" / "c2sp"


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def vector() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(asset("signatures.json"))["cosignature"]
    return found


def test_both_sign_the_cosignature_vector_alike() -> None:
    v = vector()
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["secret_key_hex"]))
    body = split_note(asset(v["checkpoint"]))[0]
    assert cosign(body, v["name"], private, v["timestamp"]) == v["line"]
    assert notes.cosign(body, v["name"], private, v["timestamp"]) == v["line"]
    assert parse_cosigner_vkey(v["vkey"]).vkey == v["vkey"]
    assert verify_line(body, v["line"], parse_cosigner_vkey(v["vkey"])) == v["timestamp"]


def test_both_build_the_specification_s_cosigned_message() -> None:
    body = split_note(asset("checkpoint-example.note"))[0]
    expected = asset("cosignature-v1-message-example.txt").encode()
    assert signed_message(body, 1679315147) == expected
    assert notes.cosignature_message(body, 1679315147) == expected


def test_both_read_the_specification_s_add_checkpoint_request() -> None:
    raw = asset("add-checkpoint-request-example.txt").encode()
    mine = parse_request(raw)
    old, hashes, note = witnessing.parse_add_checkpoint_body(raw)
    assert (mine.old_size, list(mine.proof), mine.note) == (old, hashes, note)
    assert render_request(old, hashes, note) == raw


def test_both_read_the_delivery_proof_vector_alike() -> None:
    text = asset("migex-delivery.tlog-proof")
    mine = parse_proof(text)
    theirs = proofs.parse(text)
    assert (mine.extra, mine.index, mine.path, mine.checkpoint) == (
        theirs.extra,
        theirs.index,
        theirs.hashes,
        theirs.checkpoint,
    )
