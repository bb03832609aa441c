"""c2sp.org/tlog-proof@v1 bundles: parse, and verify offline against pinned keys.

A proof is ``c2sp.org/tlog-proof@v1``, an optional ``extra <base64>`` line, ``index
<n>``, zero or more base64 inclusion-path hashes, an empty line, and the checkpoint
verbatim (a signed note, possibly with cosignatures).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.interop.c2sp import notes, tree

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class Bundle:
    extra: bytes | None
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str


def parse(text: str) -> Bundle:
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise notes.FormatError("no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise notes.FormatError("the first line is c2sp.org/tlog-proof@v1")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = notes.b64decode(rest[0][6:])
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise notes.FormatError("an 'index <n>' line is required")
    number = rest[0][6:]
    if not number.isascii() or not number.isdigit() or (number != "0" and number[0] == "0"):
        raise notes.FormatError(f"bad index {number!r}")
    hashes = tuple(notes.b64decode(line) for line in rest[1:])
    if any(len(h) != 32 for h in hashes):
        raise notes.FormatError("an inclusion path line is not a SHA-256 hash")
    return Bundle(extra, int(number), hashes, checkpoint)


def verify(
    text: str,
    leaf_data: bytes,
    log: notes.VerifierKey,
    witnesses: list[notes.VerifierKey],
    threshold: int,
) -> notes.Checkpoint:
    """Check the log's signature, ``threshold`` valid cosignatures and the inclusion."""
    bundle = parse(text)
    parsed, _ = notes.verify_note(bundle.checkpoint, [log])
    cp = notes.Checkpoint.parse(parsed.text)
    if cp.origin != log.name:
        raise notes.VerificationError("the checkpoint is for another log")
    cosigned = 0
    for witness in witnesses:
        try:
            _, verified = notes.verify_note(bundle.checkpoint, [witness])
        except notes.VerificationError:
            continue
        cosigned += 1 if verified.get(str(witness)) is not None else 0
    if cosigned < threshold:
        raise notes.VerificationError(f"{cosigned} cosignatures, {threshold} needed")
    tree.verify_inclusion(bundle.index, cp.size, tree.leaf_hash(leaf_data), bundle.hashes, cp.root)
    return cp
