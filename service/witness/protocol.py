"""Bodies of the C2SP tlog-witness ``add-checkpoint`` call (https://c2sp.org/tlog-witness).

The request body is an old size line, at most 63 consistency proof lines (one
base64 hash each), an empty line, and the checkpoint note::

    old 20852014
    PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — example.com/behind-the-sofa Az3g...

A 409 answer carries the latest cosigned size as ``<decimal>\\n`` with the media
type ``text/x.tlog.size``; a 200 answer is one or more note signature lines.
See docs/protocol.md, "Witnessing". This module is pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.audit.merkle import HASH_SIZE
from service.audit.note import SIGNATURE_PREFIX
from service.protocol.b64 import b64_decode, b64_encode

ADD_CHECKPOINT_PATH = "/add-checkpoint"
SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
MAX_TREE_SIZE = 2**64 - 1


class WitnessProtocolError(ValueError):
    """A request or answer body is not in the tlog-witness format."""


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: old size, consistency proof, checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def render_request(old_size: int, proof: tuple[bytes, ...] | list[bytes], note: str) -> bytes:
    """The request body for ``old_size``, ``proof`` and the signed checkpoint ``note``."""
    _check_size(old_size)
    if len(proof) > MAX_PROOF_LINES:
        raise WitnessProtocolError(f"at most {MAX_PROOF_LINES} consistency proof lines")
    if any(len(h) != HASH_SIZE for h in proof):
        raise WitnessProtocolError(f"each proof hash is {HASH_SIZE} bytes")
    lines = "".join(f"{b64_encode(h)}\n" for h in proof)
    return f"old {old_size}\n{lines}\n{note}".encode()


def parse_request(body: bytes) -> AddCheckpoint:
    """Parse a request body strictly; :class:`WitnessProtocolError` says what is wrong.

    The checkpoint note is returned as text, unverified.
    """
    text = _decode(body, MAX_REQUEST_BYTES, "request body")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessProtocolError("the request needs an empty line before the checkpoint")
    lines = head.split("\n")
    old_line, proof_lines = lines[0], lines[1:]
    if not old_line.startswith("old "):
        raise WitnessProtocolError("the first line is 'old <size>'")
    old_size = parse_decimal(old_line[4:])
    if len(proof_lines) > MAX_PROOF_LINES:
        raise WitnessProtocolError(f"at most {MAX_PROOF_LINES} consistency proof lines")
    proof = tuple(_parse_hash(line) for line in proof_lines)
    if not note:
        raise WitnessProtocolError("the request carries no checkpoint")
    return AddCheckpoint(old_size, proof, note)


def render_size(size: int) -> bytes:
    """The 409 body: the latest cosigned size, in decimal, and a newline."""
    _check_size(size)
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """Parse a 409 ``text/x.tlog.size`` body."""
    if not body.endswith(b"\n") or len(body) > 21:
        raise WitnessProtocolError("a size body is a decimal number and a newline")
    try:
        text = body[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise WitnessProtocolError("a size body is a decimal number and a newline") from None
    return parse_decimal(text)


def render_cosignatures(lines: list[str] | tuple[str, ...]) -> bytes:
    """The 200 body: one or more signature lines, each ending in a newline."""
    if not lines or any(not _is_signature_line(line) for line in lines):
        raise WitnessProtocolError("a 200 answer is one or more note signature lines")
    return "".join(lines).encode("utf-8")


def parse_cosignatures(body: bytes) -> list[str]:
    """Split a 200 body into its signature lines (each with its newline); unverified."""
    text = _decode(body, MAX_RESPONSE_BYTES, "answer")
    if not text.endswith("\n"):
        raise WitnessProtocolError("each signature line ends in a newline")
    lines = [f"{line}\n" for line in text[:-1].split("\n")]
    if any(not _is_signature_line(line) for line in lines):
        raise WitnessProtocolError("a 200 answer is one or more note signature lines")
    return lines


def parse_decimal(text: str) -> int:
    """A tree size: ASCII decimal without leading zeros, at most 2**64 - 1."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise WitnessProtocolError("a size is a decimal number without leading zeros")
    value = int(text)
    _check_size(value)
    return value


def _decode(body: bytes, limit: int, what: str) -> str:
    if len(body) > limit:
        raise WitnessProtocolError(f"the {what} is at most {limit} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessProtocolError(f"the {what} is not UTF-8") from None


def _parse_hash(line: str) -> bytes:
    try:
        value = b64_decode(line)
    except ValueError:
        raise WitnessProtocolError("a proof line is one base64 hash") from None
    if len(value) != HASH_SIZE:
        raise WitnessProtocolError(f"a proof hash is {HASH_SIZE} bytes")
    return value


def _is_signature_line(line: str) -> bool:
    return (
        line.startswith(SIGNATURE_PREFIX)
        and line.endswith("\n")
        and "\n" not in line[:-1]
        and len(line) > len(SIGNATURE_PREFIX) + 1
    )


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise WitnessProtocolError("a size is 0..2**64 - 1")
