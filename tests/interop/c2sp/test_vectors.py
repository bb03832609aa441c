"""Known answers for the independent C2SP client: the specifications' own examples."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.interop.c2sp import notes, proofs, tree, witnessing

ASSETS = Path(__file__).parents[2] / "assets" / "c2sp"
RFC9162 = Path(__file__).parents[2] / "assets" / "rfc9162" / "testdata"


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def signatures() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(asset("signatures.json"))
    return loaded


def test_signed_note_example_splits_at_the_last_empty_line() -> None:
    note = notes.parse_note(asset("signed-note-example.note"))
    assert note.text == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    )
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert note.signatures[0].key_id == 0x367BA04B
    assert len(note.signatures[0].blob) == 64


def test_checkpoint_example_parses_to_its_three_lines() -> None:
    note = notes.parse_note(asset("checkpoint-example.note"))
    cp = notes.Checkpoint.parse(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert notes.b64encode(cp.root) == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert cp.text() == note.text


def test_cosignature_example_carries_the_example_time_and_signs_the_example_message() -> None:
    note = notes.parse_note(asset("cosigned-checkpoint-example.note"))
    log_sig, witness_sig = note.signatures
    assert (witness_sig.name, witness_sig.key_id) == ("witness.example.com/w1", 0x8D66CF3F)
    assert len(witness_sig.blob) == 8 + 64
    timestamp = int.from_bytes(witness_sig.blob[:8], "big")
    assert timestamp == 1679315147
    message = notes.cosignature_message(note.text, timestamp)
    assert message == asset("cosignature-v1-message-example.txt").encode("utf-8")
    assert log_sig.name == "example.com/behind-the-sofa"


def test_add_checkpoint_request_example_parses() -> None:
    body = asset("add-checkpoint-request-example.txt").encode("utf-8")
    old, hashes, note = witnessing.parse_add_checkpoint_body(body)
    assert (old, len(hashes)) == (20852014, 4)
    assert notes.b64encode(hashes[0]) == "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
    parsed = notes.parse_note(note)
    assert notes.Checkpoint.parse(parsed.text).size == 20852163
    assert len(parsed.signatures) == 2
    rebuilt = witnessing.add_checkpoint_body(old, hashes, note)
    assert rebuilt == body


def test_add_checkpoint_response_example_is_three_cosignature_lines() -> None:
    text = asset("add-checkpoint-response-example.txt")
    parsed = notes.parse_note("x\n\n" + text)
    assert [s.name for s in parsed.signatures] == ["witness.example/w1"] * 2 + [
        "witness.example/w2"
    ]
    assert all(len(s.blob) == 72 for s in parsed.signatures)


def test_tlog_proof_example_framing() -> None:
    bundle = proofs.parse(asset("tlog-proof-example.tlog-proof"))
    assert bundle.index == 73894
    assert len(bundle.hashes) == 5
    assert bundle.extra is not None
    assert bundle.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert bundle.checkpoint.startswith("example.com/fancylog\n109482\n")
    # The specification elides its signatures with "[...]": not a valid note.
    with pytest.raises(notes.FormatError):
        notes.parse_note(bundle.checkpoint)


def test_note_vector_verifies_and_a_flipped_bit_does_not() -> None:
    vector = signatures()["note"]
    key = notes.VerifierKey.parse(vector["vkey"])
    _, verified = notes.verify_note(vector["note"], [key])
    assert verified == {vector["vkey"]: None}
    tampered = vector["note"].replace("answer", "Answer")
    with pytest.raises(notes.VerificationError):
        notes.verify_note(tampered, [key])


def test_cosignature_vector_is_reproduced_and_verifies() -> None:
    vector = signatures()["cosignature"]
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["secret_key_hex"]))
    text = notes.parse_note(asset(vector["checkpoint"])).text
    line = notes.cosign(text, vector["name"], private, vector["timestamp"])
    assert line == vector["line"]
    key = notes.VerifierKey.parse(vector["vkey"])
    assert str(notes.VerifierKey.for_key(vector["name"], 4, private.public_key())) == vector["vkey"]
    _, verified = notes.verify_note(asset(vector["checkpoint"]) + line, [key])
    assert verified[vector["vkey"]] == vector["timestamp"]


def test_cosignature_over_another_time_does_not_verify() -> None:
    vector = signatures()["cosignature"]
    blob = bytearray(base64.b64decode(vector["line"].split()[-1]))
    blob[11] ^= 1  # the timestamp's last byte
    line = f"\u2014 {vector['name']} {notes.b64encode(bytes(blob))}\n"
    with pytest.raises(notes.VerificationError):
        notes.verify_note(
            asset(vector["checkpoint"]) + line, [notes.VerifierKey.parse(vector["vkey"])]
        )


def test_unknown_keys_are_ignored_and_no_known_key_fails() -> None:
    vector = signatures()["cosignature"]
    other = notes.VerifierKey.parse(signatures()["note"]["vkey"])
    with pytest.raises(notes.VerificationError, match="no signature by a trusted key"):
        notes.verify_note(asset("checkpoint-example.note") + vector["line"], [other])


@pytest.mark.parametrize("bad", ["", "a+b", "name+0000000g+AQ==", "x+00000000+AQ=="])
def test_malformed_vkeys_are_refused(bad: str) -> None:
    with pytest.raises(notes.FormatError):
        notes.VerifierKey.parse(bad)


@pytest.mark.parametrize(
    "path", sorted(RFC9162.rglob("*.json")), ids=lambda p: str(p.relative_to(RFC9162))
)
def test_rfc9162_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [base64.b64decode(h) for h in case["proof"] or []]
    if "leafIdx" in case:
        check = lambda: tree.verify_inclusion(  # noqa: E731
            case["leafIdx"],
            case["treeSize"],
            base64.b64decode(case["leafHash"]),
            proof,
            base64.b64decode(case["root"]),
        )
    else:
        check = lambda: tree.verify_consistency(  # noqa: E731
            case["size1"],
            case["size2"],
            base64.b64decode(case["root1"]),
            base64.b64decode(case["root2"]),
            proof,
        )
    if case["wantErr"]:
        with pytest.raises(tree.ProofFailure):
            check()
    else:
        check()


def test_recursive_proofs_verify_for_every_pair_up_to_seventeen_leaves() -> None:
    leaves = [bytes([i]) for i in range(17)]
    for n in range(1, 18):
        root = tree.mth(leaves[:n])
        for m in range(n):
            tree.verify_inclusion(m, n, tree.leaf_hash(leaves[m]), tree.path(m, leaves[:n]), root)
        for m in range(1, n + 1):
            tree.verify_consistency(m, n, tree.mth(leaves[:m]), root, tree.proof(m, leaves[:n]))
