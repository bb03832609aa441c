"""Offline verification of an export against a signed checkpoint, and single proofs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit import offline
from service.audit.checkpoint import Checkpoint, sign_checkpoint
from service.audit.merkle import EMPTY_ROOT, CompactRange, ProofError, inclusion_proof, leaf_hash
from service.audit.note import NoteError, verifier_key
from service.audit.offline import prove_inclusion, verify_export

KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex("42" * 32))
ORIGIN = "migex/KZ:MIA"
VKEY = verifier_key(ORIGIN, KEY.public_key())
SIZE = 40


def entry(index: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": index,
        "time": "2026-11-24T15:35:33.123Z",
        "node": "KZ:MIA",
        "event": "message.accepted",
        "outcome": "accepted",
        "from": "UZ:MIA",
        "to": "KZ:MIA",
        "message_id": f"019a8c4e-0000-7000-8000-{index:012x}",
        "type": "statistics.migration-flows",
        "agreement": "kz-uz-2019",
        "purpose": "statistics",
        "rule": "uz-statistics",
        "digest": "sha-256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
        "detail": {"status": 201},
    }
    body.update(changes)
    return body


def line(index: int, body: dict[str, Any], leaf_data: bytes | None = None) -> bytes:
    """A line as the node exports it: the entry written as its own leaf bytes."""
    data = rfc8785.dumps(body) if leaf_data is None else leaf_data
    return b'{"index":%d,"leaf_data":"%s","entry":%s}\n' % (
        index,
        base64.b64encode(data),
        rfc8785.dumps(body),
    )


ENTRIES = [entry(i) for i in range(SIZE)]
LINES = [line(i, e) for i, e in enumerate(ENTRIES)]
LEAF_HASHES = [leaf_hash(rfc8785.dumps(e)) for e in ENTRIES]


def root_of(size: int) -> bytes:
    compact = CompactRange()
    for value in LEAF_HASHES[:size]:
        compact.append(value)
    return compact.root()


def checkpoint(size: int = SIZE, root: bytes | None = None) -> str:
    cp = Checkpoint(ORIGIN, size, root_of(size) if root is None else root)
    return sign_checkpoint(cp, ORIGIN, KEY)


def all_nodes() -> dict[tuple[int, int], bytes]:
    compact, nodes = CompactRange(), {}
    for value in LEAF_HASHES:
        nodes.update({(lv, k): h for lv, k, h in compact.append_collect(value)})
    return nodes


# --- verify_export -----------------------------------------------------------------


def test_untouched_export_verifies() -> None:
    report = verify_export(LINES, checkpoint(), VKEY)
    assert (report.ok, report.entries, report.root, report.reason) == (
        True,
        SIZE,
        root_of(SIZE),
        None,
    )


def test_export_written_with_spaces_and_other_key_order_verifies() -> None:
    lines = [
        json.dumps(
            {
                "entry": dict(reversed(e.items())),
                "leaf_data": base64.b64encode(rfc8785.dumps(e)).decode(),
                "index": i,
            }
        )
        for i, e in enumerate(ENTRIES)
    ]
    assert verify_export(lines, checkpoint(), VKEY).ok


def test_edited_entry_is_reported_at_its_index() -> None:
    lines = list(LINES)
    lines[17] = line(17, entry(17, outcome="refused"), rfc8785.dumps(ENTRIES[17]))
    report = verify_export(lines, checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index, report.entries) == (False, 17, 17)
    assert "RFC 8785" in (report.reason or "")


def test_edited_entry_with_matching_leaf_data_changes_the_root() -> None:
    lines = list(LINES)
    lines[17] = line(17, entry(17, outcome="refused"))
    report = verify_export(lines, checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, None)
    assert "differs from the checkpoint" in (report.reason or "")


def test_deleted_entry_is_reported_at_its_index() -> None:
    report = verify_export(LINES[:9] + LINES[10:], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 9)
    assert report.reason == "found index 10 where index 9 was expected"


def test_swapped_pair_is_reported_at_first_of_pair() -> None:
    lines = list(LINES)
    lines[5], lines[6] = lines[6], lines[5]
    report = verify_export(lines, checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 5)


def test_inserted_entry_is_reported_where_indices_repeat() -> None:
    forged = line(12, entry(12, event="message.refused", outcome="refused"))
    report = verify_export([*LINES[:12], forged, *LINES[12:]], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 13)
    assert report.reason == "found index 12 where index 13 was expected"


def test_inserted_and_renumbered_entries_change_the_root() -> None:
    forged = [entry(12, event="message.refused"), *ENTRIES[12:]]
    renumbered = [line(12 + i, dict(e, index=12 + i)) for i, e in enumerate(forged)]
    report = verify_export([*LINES[:12], *renumbered], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index, report.entries) == (False, None, SIZE)


def test_checkpoint_root_mismatch_is_reported() -> None:
    report = verify_export(LINES, checkpoint(root=root_of(SIZE - 1)), VKEY)
    assert (report.ok, report.first_bad_index, report.root) == (False, None, root_of(SIZE))


def test_export_shorter_than_checkpoint_is_reported() -> None:
    report = verify_export(LINES[:30], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index, report.entries) == (False, None, 30)
    assert report.reason == f"the export has 30 entries but the checkpoint covers {SIZE}"


def test_entries_beyond_checkpoint_size_are_read_but_not_hashed() -> None:
    report = verify_export(LINES, checkpoint(size=25), VKEY)
    assert (report.ok, report.entries, report.root) == (True, SIZE, root_of(25))


def test_bad_entry_beyond_checkpoint_size_is_reported() -> None:
    lines = [*LINES[:35], b"not json\n", *LINES[36:]]
    report = verify_export(lines, checkpoint(size=25), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 35)


def test_empty_export_verifies_against_empty_checkpoint() -> None:
    report = verify_export([], checkpoint(size=0, root=EMPTY_ROOT), VKEY)
    assert (report.ok, report.entries, report.root) == (True, 0, EMPTY_ROOT)


def test_empty_checkpoint_with_wrong_root_fails() -> None:
    report = verify_export([], checkpoint(size=0, root=root_of(1)), VKEY)
    assert (report.ok, report.first_bad_index) == (False, None)


def test_blank_lines_are_skipped() -> None:
    lines = [*LINES[:3], b"\n", *LINES[3:], b"\n"]
    assert verify_export(lines, checkpoint(), VKEY).ok


def test_checkpoint_by_other_key_raises() -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    note = sign_checkpoint(Checkpoint(ORIGIN, SIZE, root_of(SIZE)), ORIGIN, other)
    with pytest.raises(NoteError):
        verify_export(LINES, note, VKEY)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"[1]\n", "JSON object"),
        (b'{"index":3,"leaf_data":"e30=","entry":{},"entry":{}}\n', "duplicate member"),
        (b'{"index":3,"leaf_data":"e30=","entry":{"a":NaN}}\n', "NaN"),
        (b'{"index":3,"leaf_data":"e30","entry":{}}\n', "base64"),
        (b'{"index":3,"leaf_data":"e30=","entry":[]}\n', "'entry' must be a JSON object"),
        (b'{"index":true,"leaf_data":"e30=","entry":{}}\n', "'index' must be"),
        (b'{"index":3,"leaf_data":"e30=","entry":{"index":4}}\n', "own 'index'"),
        (b'{"index":3,"leaf_data":"e30=","entry":{"\xff":1}}\n', "not a JSON line"),
    ],
)
def test_malformed_line_is_reported_with_reason(bad: bytes, reason: str) -> None:
    report = verify_export([*LINES[:3], bad, *LINES[4:]], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 3)
    assert reason in (report.reason or "")


def test_leaf_data_with_unsorted_keys_is_not_canonical() -> None:
    data = json.dumps(dict(reversed(ENTRIES[3].items())), separators=(",", ":")).encode()
    report = verify_export([*LINES[:3], line(3, ENTRIES[3], data), *LINES[4:]], checkpoint(), VKEY)
    assert (report.ok, report.first_bad_index) == (False, 3)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline, "_SEQUENTIAL_ENTRIES", 6)
    monkeypatch.setattr(offline, "_CHUNK_LINES", 5)


@pytest.mark.usefixtures("small_chunks")
def test_worker_processes_verify_untouched_export() -> None:
    report = verify_export(iter(LINES), checkpoint(size=33), VKEY, workers=2)
    assert (report.ok, report.entries, report.root) == (True, SIZE, root_of(33))


@pytest.mark.usefixtures("small_chunks")
def test_worker_processes_report_first_bad_entry() -> None:
    lines = list(LINES)
    lines[23] = line(23, entry(23, outcome="refused"), rfc8785.dumps(ENTRIES[23]))
    lines[31] = b"not json\n"
    report = verify_export(lines, checkpoint(), VKEY, workers=2)
    assert (report.ok, report.first_bad_index, report.entries) == (False, 23, 23)


@pytest.mark.usefixtures("small_chunks")
def test_worker_processes_report_root_mismatch() -> None:
    report = verify_export(LINES, checkpoint(root=root_of(SIZE - 1)), VKEY, workers=2)
    assert (report.ok, report.first_bad_index, report.root) == (False, None, root_of(SIZE))


# --- prove_inclusion ---------------------------------------------------------------


def test_entry_with_its_inclusion_proof_is_proven() -> None:
    proof = inclusion_proof(7, SIZE, all_nodes())
    prove_inclusion(LINES[7].decode(), proof, checkpoint(), VKEY)


def test_edited_entry_line_fails_to_prove() -> None:
    proof = inclusion_proof(7, SIZE, all_nodes())
    forged = line(7, entry(7, outcome="refused")).decode()
    with pytest.raises(ProofError, match="does not lead to the root"):
        prove_inclusion(forged, proof, checkpoint(), VKEY)


def test_proof_for_other_index_fails() -> None:
    proof = inclusion_proof(8, SIZE, all_nodes())
    with pytest.raises(ProofError):
        prove_inclusion(LINES[7].decode(), proof, checkpoint(), VKEY)


def test_inconsistent_entry_line_fails_to_prove() -> None:
    proof = inclusion_proof(7, SIZE, all_nodes())
    forged = line(7, entry(7, outcome="refused"), rfc8785.dumps(ENTRIES[7])).decode()
    with pytest.raises(ProofError, match="entry line is invalid"):
        prove_inclusion(forged, proof, checkpoint(), VKEY)


def test_proof_against_unverifiable_checkpoint_fails() -> None:
    proof = inclusion_proof(7, SIZE, all_nodes())
    note = checkpoint().replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
    with pytest.raises(ProofError, match="checkpoint does not verify"):
        prove_inclusion(LINES[7].decode(), proof, note, VKEY)
