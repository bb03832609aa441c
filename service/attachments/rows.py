"""The `attachments` rows of a message: what it names, written with the message."""

from __future__ import annotations

from collections.abc import Sequence

from service.attachments.limits import Declared
from service.db.tables import attachments
from service.ledger.committer import Tx


def defer_attachments(tx: Tx, message_pk: int, items: Sequence[Declared]) -> None:
    """Queue the rows of the files message `message_pk` names (after its own row)."""
    for d in items:
        tx.defer(
            attachments,
            {
                "message_pk": message_pk,
                "position": d.position,
                "digest": d.digest,
                "size": d.size,
                "media_type": d.media_type,
                "name": d.name,
                "purged_at": None,
            },
        )
