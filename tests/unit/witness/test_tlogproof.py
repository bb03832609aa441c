"""c2sp.org/tlog-proof@v1: format, parse, and offline verification against a policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.merkle import leaf_hash
from service.audit.note import verifier_key
from service.protocol.b64 import b64_encode
from service.witness.cosignature import CosignerKey, cosign
from service.witness.policy import Policy, parse_policy
from service.witness.tlogproof import (
    HEADER,
    TlogProof,
    TlogProofError,
    delivery_record,
    format_proof,
    parse_proof,
    verify_proof,
)
from tests.interop.c2sp import notes as c2sp_notes
from tests.interop.c2sp import proofs as c2sp_proofs
from tests.interop.c2sp import tree as c2sp_tree

ASSETS = Path(__file__).parents[2] / "assets" / "c2sp"
ORIGIN = "migex/UZ:MIA"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TIME = 1_795_537_054


def witness_key(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


def witness_name(n: int) -> str:
    return f"migex/{['KZ', 'KG', 'TJ'][n - 1]}:MIA/witness"


def witness_vkey(n: int) -> str:
    return CosignerKey(witness_name(n), witness_key(n).public_key()).vkey


LOG_VKEY = verifier_key(ORIGIN, LOG_KEY.public_key())
POLICY_TEXT = f"""log {LOG_VKEY}
witness KZ {witness_vkey(1)}
witness KG {witness_vkey(2)}
witness TJ {witness_vkey(3)}
group partners 2 KZ KG TJ
quorum partners
"""


def entry(index: int) -> bytes:
    value = {
        "agreement": "kz-uz-2019",
        "code": None,
        "detail": {},
        "digest": f"sha-256:{'A' * 42}{'AEIM'[index % 4]}",
        "event": "message.accepted" if index != 2 else "audit.query",
        "from": "KZ:MIA",
        "index": index,
        "message_id": f"01a20e59-2c0f-7cb0-8484-9b18fcbbab{index:02d}",
        "node": "UZ:MIA",
        "outcome": "accepted",
        "party": "KZ:MIA",
        "purpose": "statistics",
        "rule": "kz-out-statistics",
        "time": "2026-11-24T16:17:16.458Z",
        "to": "UZ:MIA",
        "type": "statistics.migration-flows",
    }
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


LEAVES = [entry(i) for i in range(7)]


def checkpoint_note(witnesses: tuple[int, ...] = (1, 2), leaves: list[bytes] = LEAVES) -> str:
    cp = Checkpoint(ORIGIN, len(leaves), c2sp_tree.mth(leaves))
    note = sign_checkpoint(cp, ORIGIN, LOG_KEY)
    body = note[: note.index("\n\n") + 1]
    return note + "".join(cosign(body, witness_name(n), witness_key(n), TIME) for n in witnesses)


def make_proof(index: int = 3, witnesses: tuple[int, ...] = (1, 2)) -> TlogProof:
    path = tuple(c2sp_tree.path(index, LEAVES))
    return TlogProof(LEAVES[index], index, path, checkpoint_note(witnesses))


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY_TEXT)


def test_known_answer_proof_is_byte_identical() -> None:
    assert format_proof(make_proof()) == (ASSETS / "migex-delivery.tlog-proof").read_text()


def test_known_answer_proof_verifies_with_the_independent_client() -> None:
    text = (ASSETS / "migex-delivery.tlog-proof").read_text()
    witnesses = [c2sp_notes.VerifierKey.parse(witness_vkey(n)) for n in (1, 2, 3)]
    log = c2sp_notes.VerifierKey.parse(LOG_VKEY)
    cp = c2sp_proofs.verify(text, LEAVES[3], log, witnesses, 2)
    assert (cp.origin, cp.size) == (ORIGIN, 7)


def test_proof_round_trips_through_text() -> None:
    proof = make_proof()
    assert parse_proof(format_proof(proof)) == proof
    assert parse_proof(format_proof(proof).encode()) == proof


def test_verified_proof_returns_what_was_proven(policy: Policy) -> None:
    proven = verify_proof(format_proof(make_proof()), policy)
    assert (proven.origin, proven.index, proven.size) == (ORIGIN, 3, 7)
    assert proven.leaf == LEAVES[3]
    assert proven.root == c2sp_tree.mth(LEAVES)
    assert proven.cosigned == {"KZ": TIME, "KG": TIME}
    record = delivery_record(proven)
    assert (record.receiver, record.sender) == ("UZ:MIA", "KZ:MIA")
    assert record.message_id == "01a20e59-2c0f-7cb0-8484-9b18fcbbab03"


def test_the_spec_example_parses_once_its_elided_signatures_are_real() -> None:
    example = (ASSETS / "tlog-proof-example.tlog-proof").read_text()
    with pytest.raises(TlogProofError, match="checkpoint is not a signed note"):
        parse_proof(example)
    head = example[: example.index("\n\n") + 2]
    parsed = parse_proof(head + checkpoint_note())
    assert parsed.index == 73894
    assert len(parsed.path) == 5
    assert parsed.extra is not None
    assert parsed.extra.startswith(b"age-v1.2.1-darwin-arm64")


def flip_bit(raw: bytes, bit: int = 0) -> bytes:
    return bytes([raw[0] ^ (1 << bit), *raw[1:]])


def test_flipped_bit_in_leaf_data_fails(policy: Policy) -> None:
    proof = make_proof()
    tampered = TlogProof(flip_bit(proof.extra or b""), proof.index, proof.path, proof.checkpoint)
    with pytest.raises(TlogProofError, match="not proven"):
        verify_proof(tampered, policy)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_flipped_bit_in_path_fails(policy: Policy, position: int) -> None:
    proof = make_proof()
    path = list(proof.path)
    path[position] = flip_bit(path[position], 7)
    with pytest.raises(TlogProofError, match="not proven"):
        verify_proof(TlogProof(proof.extra, proof.index, tuple(path), proof.checkpoint), policy)


def test_flipped_bit_in_checkpoint_fails(policy: Policy) -> None:
    text = format_proof(make_proof())
    root64 = b64_encode(c2sp_tree.mth(LEAVES))
    tampered = text.replace(root64, b64_encode(flip_bit(c2sp_tree.mth(LEAVES))))
    with pytest.raises(TlogProofError, match="not signed by a pinned log key"):
        verify_proof(tampered, policy)


@pytest.mark.parametrize("index", [2, 4, 6])
def test_wrong_index_fails(policy: Policy, index: int) -> None:
    proof = make_proof()
    with pytest.raises(TlogProofError, match="not proven"):
        verify_proof(TlogProof(proof.extra, index, proof.path, proof.checkpoint), policy)


def test_index_beyond_the_tree_fails(policy: Policy) -> None:
    proof = make_proof()
    with pytest.raises(TlogProofError, match="not in a tree of size 7"):
        verify_proof(TlogProof(proof.extra, 7, proof.path, proof.checkpoint), policy)


def test_one_cosignature_does_not_meet_two_of_three(policy: Policy) -> None:
    with pytest.raises(TlogProofError, match=r"do not meet the policy \(have: KZ\)"):
        verify_proof(make_proof(witnesses=(1,)), policy)


def test_no_cosignature_does_not_meet_the_policy(policy: Policy) -> None:
    with pytest.raises(TlogProofError, match=r"have: none"):
        verify_proof(make_proof(witnesses=()), policy)


def test_any_two_witnesses_meet_the_policy(policy: Policy) -> None:
    assert set(verify_proof(make_proof(witnesses=(2, 3)), policy).cosigned) == {"KG", "TJ"}


def test_cosignature_by_an_unpinned_witness_does_not_count(policy: Policy) -> None:
    proof = make_proof(witnesses=(1,))
    body = proof.checkpoint[: proof.checkpoint.index("\n\n") + 1]
    stranger = cosign(body, witness_name(2), witness_key(9), TIME)
    forged = TlogProof(proof.extra, proof.index, proof.path, proof.checkpoint + stranger)
    with pytest.raises(TlogProofError, match="do not meet the policy"):
        verify_proof(forged, policy)


def test_invalid_cosignature_of_a_pinned_witness_fails(policy: Policy) -> None:
    proof = make_proof(witnesses=(1, 2, 3))
    lines = proof.checkpoint.split("\n")
    name, blob = lines[-2].rsplit(" ", 1)
    raw = bytearray(c2sp_notes.b64decode(blob))
    raw[-1] ^= 1
    lines[-2] = f"{name} {b64_encode(bytes(raw))}"
    forged = TlogProof(proof.extra, proof.index, proof.path, "\n".join(lines))
    with pytest.raises(TlogProofError, match="does not verify: TJ"):
        verify_proof(forged, policy)


def test_wrong_origin_fails(policy: Policy) -> None:
    other = verifier_key("migex/KG:MIA", OTHER_LOG_KEY.public_key())
    with pytest.raises(TlogProofError, match="not signed by a pinned log key"):
        verify_proof(make_proof(), policy, [other])
    same_key_other_name = verifier_key("migex/KG:MIA", LOG_KEY.public_key())
    with pytest.raises(TlogProofError, match="not signed by a pinned log key"):
        verify_proof(make_proof(), policy, [same_key_other_name])


def test_missing_leaf_data_fails(policy: Policy) -> None:
    proof = make_proof()
    with pytest.raises(TlogProofError, match="no leaf data"):
        verify_proof(TlogProof(None, proof.index, proof.path, proof.checkpoint), policy)


def test_delivery_record_refuses_other_events(policy: Policy) -> None:
    proven = verify_proof(make_proof(index=2), policy)
    with pytest.raises(TlogProofError, match="not an accepted message"):
        delivery_record(proven)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty line"),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\n", "starts with"),
        (f"{HEADER}\n\n", "'index <n>' line"),
        (f"{HEADER}\nindex 01\n\n", "leading zeroes"),
        (f"{HEADER}\nindex -1\n\n", "leading zeroes"),
        (f"{HEADER}\nindex {2**64}\n\n", "out of range"),
        (f"{HEADER}\nextra \nindex 0\n\n", "1 to"),
        (f"{HEADER}\nextra YQ\nindex 0\n\n", "canonical base64"),
        (f"{HEADER}\nindex 0\nYQ==\n\n", "32-byte hash"),
        (f"{HEADER}\nindex 0\n" + "A" * 42 + "B=\n\n", "canonical base64"),
        (f"{HEADER}\nindex 0\n" + ("A" * 43 + "=\n") * 65 + "\n", "at most 64"),
        (f"{HEADER}\nindex 0\n\nno signature\n", "not a signed note"),
        (f"{HEADER}\nindex 0\nextra YQ==\n\n", "canonical base64"),
    ],
)
def test_malformed_proofs_are_refused(text: str, reason: str) -> None:
    with pytest.raises(TlogProofError, match=reason):
        parse_proof(text)


def test_non_utf8_is_refused() -> None:
    with pytest.raises(TlogProofError, match="UTF-8"):
        parse_proof(b"\xff")


def test_leaf_hash_of_the_vector_entry_is_in_the_tree() -> None:
    path = c2sp_tree.path(3, LEAVES)
    c2sp_tree.verify_inclusion(3, 7, leaf_hash(LEAVES[3]), path, c2sp_tree.mth(LEAVES))
