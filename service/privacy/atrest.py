"""Stored bodies at the storage boundary: sealed on the way in, opened on the way out.

A body column (`messages.jws`, `signed_versions.jws`, `pending_messages.jws`: a message
awaiting its attachments) has two companions: `kek_id` and
`wrapped_key`. With both null the column holds the bytes as received or signed (a row
written before a KEK was configured, or by a node without one); otherwise it holds the
nonce, ciphertext and tag of `service.privacy.sealing`, and `wrapped_key` the row's data
key wrapped under the KEK `kek_id`. The associated data binds each body to its row:
the table and column, and the row's identity (sender and message id; message id and
version for a signed copy), so a body moved to another row does not open.

The rest of the node sees plaintext: writers take `Bodies.message`/`Bodies.version`
columns, readers `Bodies.open_message`/`Bodies.open_version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.privacy.sealing import Sealed, Sealer, SealError

BODY_COLUMNS = ("jws", "kek_id", "wrapped_key")


def message_aad(sender: str, message_id: str) -> bytes:
    return b"\x00".join((b"messages.jws", sender.encode(), message_id.encode()))


def pending_aad(sender: str, message_id: str) -> bytes:
    return b"\x00".join((b"pending_messages.jws", sender.encode(), message_id.encode()))


def version_aad(message_id: str, version: int) -> bytes:
    return b"\x00".join((b"signed_versions.jws", message_id.encode(), str(version).encode()))


class BodyUnreadable(Exception):
    """A stored body this node cannot open: no such KEK configured, or altered bytes."""


@dataclass(frozen=True)
class Bodies:
    """How this node stores bodies: sealed under `sealer`'s active KEK, or (None) as they are."""

    sealer: Sealer | None = None

    def columns(self, plaintext: bytes, aad: bytes) -> dict[str, Any]:
        """The columns to write: the body alone when not sealing (its companions stay
        null, and a database of a revision before them still takes the row)."""
        if self.sealer is None:
            return {"jws": plaintext}
        sealed = self.sealer.seal(plaintext, aad)
        return {"jws": sealed.body, "kek_id": sealed.kek_id, "wrapped_key": sealed.wrapped_key}

    def message(self, plaintext: bytes, sender: str, message_id: str) -> dict[str, Any]:
        return self.columns(plaintext, message_aad(sender, message_id))

    def pending(self, plaintext: bytes, sender: str, message_id: str) -> dict[str, Any]:
        return self.columns(plaintext, pending_aad(sender, message_id))

    def version(self, plaintext: bytes, message_id: str, version: int) -> dict[str, Any]:
        return self.columns(plaintext, version_aad(message_id, version))

    def open(self, row: Mapping[Any, Any], aad: bytes) -> bytes | None:
        """The body of a row holding BODY_COLUMNS (None once purged)."""
        body, kek_id, wrapped = row["jws"], row["kek_id"], row["wrapped_key"]
        if body is None:
            return None
        if kek_id is None:
            return bytes(body)
        if self.sealer is None:
            raise BodyUnreadable(
                f"a stored body is sealed under KEK {kek_id!r}; none is configured"
            )
        try:
            return self.sealer.open(Sealed(kek_id, bytes(wrapped), bytes(body)), aad)
        except SealError as exc:
            raise BodyUnreadable(str(exc)) from exc

    def open_message(self, row: Mapping[Any, Any], sender: str, message_id: str) -> bytes | None:
        return self.open(row, message_aad(sender, message_id))

    def open_pending(self, row: Mapping[Any, Any], sender: str, message_id: str) -> bytes:
        body = self.open(row, pending_aad(sender, message_id))
        if body is None:
            raise BodyUnreadable(f"the pending message {message_id} from {sender} has no body")
        return body

    def open_version(self, row: Mapping[Any, Any], message_id: str, version: int) -> bytes | None:
        return self.open(row, version_aad(message_id, version))


PLAINTEXT = Bodies()
