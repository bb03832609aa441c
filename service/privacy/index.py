"""The disclosure index: written with each message that concerns a person, read by the
data-protection officer's queries.

`defer_disclosure` queues the rows through the writer's deferred inserts, so they are
committed with the message and its audit entry or not at all. `find_disclosures`
answers for a set of subject digests: the messages that name one of them, and the
messages that answer those or that they answer (`reply_to`), since a response that
carries no particulars still concerns the person of its request.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, and_, or_, select, tuple_

from service.db.tables import disclosure_subjects, disclosures, messages
from service.ledger.committer import Tx
from service.privacy.subjects import Disclosed
from service.protocol.envelope import Envelope

# An answer lists at most this many messages (the oldest first), and says so when it
# was cut: a person named in more is a case for an export, not for one screen.
MAX_ANSWER = 5000


def defer_disclosure(
    tx: Tx,
    env: Envelope,
    disclosed: Disclosed,
    *,
    message_pk: int,
    direction: str,
    audit_index: int,
    removed: list[str] | None = None,
) -> None:
    """Queue the disclosure row of a message and one row per person digest."""
    tx.defer(
        disclosures,
        {
            "message_pk": message_pk,
            "direction": direction,
            "partner": env.aud if direction == "out" else env.iss,
            "message_id": env.id,
            "reply_to": env.reply_to,
            "type": env.type,
            "agreement": env.agreement,
            "purpose": env.purpose,
            "disclosed_at": tx.now,
            "audit_index": audit_index,
            "fields": json.dumps(list(disclosed.fields)),
            "removed_fields": json.dumps(removed) if removed else None,
        },
    )
    for digest in sorted(disclosed.subjects):
        tx.defer(disclosure_subjects, {"digest": digest, "message_pk": message_pk})


def find_disclosures(
    conn: Connection, digests: Collection[str], *, limit: int = MAX_ANSWER
) -> tuple[list[dict[str, Any]], bool]:
    """The disclosures concerning any of `digests`, oldest first, and whether the list
    was cut at `limit`. Each item says whether it named the person (`subject`) or is a
    request or response linked to one that did (`reply`)."""
    if not digests:
        return [], False
    d = disclosures.c
    direct = select(disclosure_subjects.c.message_pk).where(
        disclosure_subjects.c.digest.in_(sorted(digests))
    )
    named = conn.execute(
        select(d.partner, d.message_id, d.reply_to).where(d.message_pk.in_(direct))
    )
    ids: set[tuple[str, str]] = set()
    for row in named:
        ids.add((row.partner, row.message_id))
        if row.reply_to is not None:
            ids.add((row.partner, row.reply_to))
    if not ids:
        return [], False
    pairs = sorted(ids)
    linked = or_(
        d.message_pk.in_(direct),
        tuple_(d.partner, d.message_id).in_(pairs),
        and_(d.reply_to.is_not(None), tuple_(d.partner, d.reply_to).in_(pairs)),
    )
    rows = conn.execute(
        select(d, messages.c.status, d.message_pk.in_(direct).label("named"))
        .join(messages, messages.c.pk == d.message_pk)
        .where(linked)
        .order_by(d.disclosed_at, d.message_pk)
        .limit(limit + 1)
    ).all()
    items = [_item(row) for row in rows[:limit]]
    return items, len(rows) > limit


def _item(row: Any) -> dict[str, Any]:
    return {
        "message_id": row.message_id,
        "direction": row.direction,
        "partner": row.partner,
        "at": row.disclosed_at,
        "type": row.type,
        "agreement": row.agreement,
        "purpose": row.purpose,
        "reply_to": row.reply_to,
        "status": row.status,
        "audit_index": int(row.audit_index),
        "fields": json.loads(row.fields),
        "removed_fields": json.loads(row.removed_fields) if row.removed_fields else [],
        "via": "subject" if row.named else "reply",
    }
