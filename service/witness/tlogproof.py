"""C2SP transparency log proofs, ``c2sp.org/tlog-proof@v1`` (https://c2sp.org/tlog-proof).

A proof bundles what an offline verifier needs to see that an entry is in a log
whose checkpoint enough witnesses cosigned::

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry's leaf data>
    index <zero-based index, decimal>
    <base64 inclusion path hash, leaf's sibling first>
    ...
    <empty line>
    <the checkpoint note verbatim, with the log's signature and the cosignatures>

For migex the ``extra`` data is the receiver's audit entry leaf data, the exact bytes
hashed into the log (RFC 8785 JSON of the entry). The C2SP text leaves ``extra``
unauthenticated; here it is authenticated by the proof itself, because the leaf hash
is computed from it and the inclusion path must lead from that hash to the
checkpoint's root. See docs/protocol.md, "Delivery proofs" (protocol v1.1).

This module is pure: no I/O. :func:`verify_proof` needs only pinned keys and a
witness policy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.audit import merkle
from service.audit.checkpoint import Checkpoint, CheckpointError, verify_checkpoint
from service.audit.entries import MESSAGE_ACCEPTED
from service.audit.note import NoteError, parse_verifier_key, split_note
from service.protocol.b64 import b64_decode, b64_encode
from service.witness.policy import Policy, PolicyError, PolicyReport, evaluate

HEADER = "c2sp.org/tlog-proof@v1"
FILE_EXTENSION = ".tlog-proof"
MEDIA_TYPE = "text/x.tlog.proof"
"""C2SP names no media type for proofs; this one follows tlog-witness's ``text/x.tlog.size``."""
MAX_PATH_HASHES = 64
MAX_EXTRA_BYTES = 64 * 1024
MAX_PROOF_BYTES = 256 * 1024
MAX_INDEX = 2**64 - 1


class TlogProofError(ValueError):
    """A proof is malformed, or it does not prove what it claims."""


@dataclass(frozen=True)
class TlogProof:
    """A parsed proof: the entry's leaf data, its index, its path and the checkpoint."""

    extra: bytes | None
    index: int
    path: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class ProvenEntry:
    """What a proof proved: ``leaf`` is at ``index`` of the log ``origin`` at ``size``."""

    origin: str
    index: int
    leaf: bytes
    size: int
    root: bytes
    log_vkey: str
    cosigned: dict[str, int]
    """The policy names of the witnesses that validly cosigned, with their timestamps."""


def format_proof(proof: TlogProof) -> str:
    """The proof's text; ``checkpoint`` is included verbatim."""
    if proof.extra is not None and not proof.extra:
        raise TlogProofError("extra data, when present, is not empty")
    _check_index(proof.index)
    if len(proof.path) > MAX_PATH_HASHES or any(len(h) != merkle.HASH_SIZE for h in proof.path):
        raise TlogProofError(f"an inclusion path is at most {MAX_PATH_HASHES} SHA-256 hashes")
    _check_checkpoint_text(proof.checkpoint)
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(f"extra {b64_encode(proof.extra)}")
    lines.append(f"index {proof.index}")
    lines.extend(b64_encode(h) for h in proof.path)
    return "\n".join(lines) + "\n\n" + proof.checkpoint


def parse_proof(text: str | bytes) -> TlogProof:
    """Parse a proof strictly; raises :class:`TlogProofError`."""
    if isinstance(text, bytes):
        if len(text) > MAX_PROOF_BYTES:
            raise TlogProofError(f"a proof is at most {MAX_PROOF_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TlogProofError("a proof is UTF-8 text") from exc
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PROOF_BYTES:
        raise TlogProofError(f"a proof is at most {MAX_PROOF_BYTES} bytes")
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise TlogProofError("a proof needs an empty line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"a proof starts with the line {HEADER!r}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _unb64(rest[0][len("extra ") :], "extra data")
        if not extra or len(extra) > MAX_EXTRA_BYTES:
            raise TlogProofError(f"extra data is 1 to {MAX_EXTRA_BYTES} bytes")
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise TlogProofError("a proof has an 'index <n>' line after its header")
    index = _parse_index(rest[0][len("index ") :])
    hashes = rest[1:]
    if len(hashes) > MAX_PATH_HASHES:
        raise TlogProofError(f"an inclusion path is at most {MAX_PATH_HASHES} hashes")
    path = tuple(_parse_hash(line) for line in hashes)
    _check_checkpoint_text(checkpoint)
    return TlogProof(extra, index, path, checkpoint)


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint verified with a pinned log key whose cosignatures meet a policy."""

    checkpoint: Checkpoint
    note: str
    log_vkey: str
    cosigned: dict[str, int]


def verify_cosigned_checkpoint(
    note: str, policy: Policy, log_vkeys: Sequence[str] = ()
) -> CosignedCheckpoint:
    """Check a checkpoint's log signature and that its cosignatures meet ``policy``.

    The checkpoint must be signed by one of ``log_vkeys`` (or, if none are given, of
    the policy's logs) and its origin must be that key's name (the migex convention:
    ``migex/<party id>``). Raises :class:`TlogProofError`.
    """
    keys = list(log_vkeys) or [log.vkey for log in policy.logs]
    if not keys:
        raise TlogProofError("no log key to verify the checkpoint with")
    cp, vkey = _verify_log_signature(note, keys)
    report = _meets_policy(policy, note)
    return CosignedCheckpoint(cp, note, vkey, dict(report.cosigned))


def verify_entry(
    cosigned: CosignedCheckpoint, index: int, leaf: bytes, path: Sequence[bytes]
) -> ProvenEntry:
    """Check that ``leaf`` is at ``index`` under a verified checkpoint; raise :class:`TlogProofError`."""
    cp = cosigned.checkpoint
    if index >= cp.size:
        raise TlogProofError(f"index {index} is not in a tree of size {cp.size}")
    try:
        merkle.verify_inclusion(index, cp.size, merkle.leaf_hash(leaf), path, cp.root)
    except merkle.ProofError as exc:
        raise TlogProofError(f"the entry is not proven in the checkpoint: {exc}") from exc
    return ProvenEntry(
        cp.origin, index, leaf, cp.size, cp.root, cosigned.log_vkey, dict(cosigned.cosigned)
    )


def verify_proof(
    proof: TlogProof | str | bytes,
    policy: Policy,
    log_vkeys: Sequence[str] = (),
) -> ProvenEntry:
    """Verify a proof offline and return what it proves; raise :class:`TlogProofError`.

    The checkpoint must pass :func:`verify_cosigned_checkpoint`, the proof must carry
    the leaf data, and the inclusion path must lead from that leaf to the root.
    """
    parsed = proof if isinstance(proof, TlogProof) else parse_proof(proof)
    cosigned = verify_cosigned_checkpoint(parsed.checkpoint, policy, log_vkeys)
    if parsed.extra is None:
        raise TlogProofError("the proof carries no leaf data ('extra' line)")
    return verify_entry(cosigned, parsed.index, parsed.extra, parsed.path)


def _verify_log_signature(note: str, keys: Sequence[str]) -> tuple[Checkpoint, str]:
    reasons = []
    for vkey in keys:
        try:
            return verify_checkpoint(note, vkey), vkey
        except (NoteError, CheckpointError) as exc:
            reasons.append(str(exc))
        except ValueError as exc:  # a malformed pinned key
            raise TlogProofError(f"bad log verifier key {vkey!r}: {exc}") from exc
    raise TlogProofError("the checkpoint is not signed by a pinned log key: " + "; ".join(reasons))


def _meets_policy(policy: Policy, note: str) -> PolicyReport:
    try:
        report = evaluate(policy, note)
    except PolicyError as exc:
        raise TlogProofError(str(exc)) from exc
    if report.invalid:
        names = ", ".join(report.invalid)
        raise TlogProofError(f"a cosignature claiming a pinned witness does not verify: {names}")
    if not report.met:
        have = ", ".join(sorted(report.cosigned)) or "none"
        raise TlogProofError(f"the checkpoint's cosignatures do not meet the policy (have: {have})")
    return report


@dataclass(frozen=True)
class DeliveryRecord:
    """A ``message.accepted`` entry of the receiver's log, as a delivery proof shows it."""

    receiver: str
    sender: str
    message_id: str
    digest: str
    time: str


def delivery_record(proven: ProvenEntry) -> DeliveryRecord:
    """Read a proven leaf as the receiver's record of accepting a message.

    The leaf must be a ``message.accepted`` entry written by the log's own party
    (origin ``migex/<party>``) and addressed to it. Raises :class:`TlogProofError`.
    """
    entry = _leaf_entry(proven.leaf)
    receiver = parse_verifier_key(proven.log_vkey)[0].removeprefix("migex/")
    if entry.get("index") != proven.index:
        raise TlogProofError("the entry's own index differs from the proof's index")
    if entry.get("event") != MESSAGE_ACCEPTED or entry.get("outcome") != "accepted":
        raise TlogProofError(f"the entry records {entry.get('event')!r}, not an accepted message")
    if entry.get("node") != receiver or entry.get("to") != receiver:
        raise TlogProofError(f"the entry was not written by {receiver} as the message's receiver")
    return DeliveryRecord(
        receiver,
        _text(entry, "from"),
        _text(entry, "message_id"),
        _text(entry, "digest"),
        _text(entry, "time"),
    )


def _text(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise TlogProofError(f"the entry has no {name!r}")
    return value


def _leaf_entry(leaf: bytes) -> dict[str, Any]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in pairs}) != len(pairs):
            raise TlogProofError("the entry has a duplicate member")
        return dict(pairs)

    try:
        entry = json.loads(leaf.decode("utf-8"), object_pairs_hook=unique)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TlogProofError("the leaf data is not a JSON audit entry") from exc
    if not isinstance(entry, dict):
        raise TlogProofError("the leaf data is not a JSON object")
    return entry


def _check_checkpoint_text(checkpoint: str) -> None:
    try:
        split_note(checkpoint)
    except NoteError as exc:
        raise TlogProofError(f"the checkpoint is not a signed note: {exc}") from exc


def _check_index(index: int) -> None:
    if isinstance(index, bool) or not 0 <= index <= MAX_INDEX:
        raise TlogProofError(f"index {index!r} is out of range")


def _parse_index(word: str) -> int:
    if not (word.isascii() and word.isdigit()) or (len(word) > 1 and word[0] == "0"):
        raise TlogProofError("the index is a decimal number without leading zeroes")
    index = int(word)
    _check_index(index)
    return index


def _parse_hash(line: str) -> bytes:
    raw = _unb64(line, "an inclusion path line")
    if len(raw) != merkle.HASH_SIZE:
        raise TlogProofError(f"an inclusion path line is a {merkle.HASH_SIZE}-byte hash")
    return raw


def _unb64(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), canonical, padded."""
    try:
        return b64_decode(text)
    except ValueError as exc:
        raise TlogProofError(f"{what} is not canonical base64") from exc


def prove_delivery(proof: str | bytes, policy: Policy, log_vkeys: Sequence[str] = ()) -> list[str]:
    """Verify a delivery proof offline; the lines ``migex audit prove-delivery`` prints.

    Raises :class:`TlogProofError` if the proof fails any check of
    :func:`verify_proof` or its leaf is not a receiver's ``message.accepted`` entry.
    """
    proven = verify_proof(proof, policy, log_vkeys)
    record = delivery_record(proven)
    witnesses = ", ".join(f"{name} at {ts}" for name, ts in sorted(proven.cosigned.items()))
    return [
        f"ok: {record.receiver} logged message {record.message_id} from {record.sender}"
        f" ({record.digest}) at {record.time}",
        f"ok: entry {proven.index} is in {proven.origin} at tree size {proven.size}",
        f"ok: the checkpoint meets the witness policy; cosigned by {witnesses or 'no witness'}",
    ]
