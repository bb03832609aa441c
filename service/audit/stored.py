"""Stored messages checked against the audit log.

The log records the SHA-256 digest of every message it accepted or queued and of
every signed copy it sent. This check reads a node's database beside an export of its
log (verified first with `migex audit verify`): every stored message and signed copy
must hash to its digest, that digest must be in the log under the message's id, and
every message the log says was accepted or queued must still be stored. A message
whose bytes were purged under the retention period keeps its digest, which is still
checked against the log. A sealed body (docs/privacy.md) is opened only to hash it.
Each attachment a message names must be among the files its
creating entry lists and, unless purged, be in the attachment store with bytes that
hash to its digest. Lines whose search columns differ from their entry are
reported too (see `service.audit.columns`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from service.attachments.sealed import AttachmentUnreadable
from service.attachments.store import AttachmentStore, digest_of
from service.audit import entries as ev
from service.audit.columns import column_mismatches
from service.db.tables import attachments, messages, outbox, signed_versions
from service.privacy.atrest import PLAINTEXT, Bodies, BodyUnreadable, message_aad, version_aad
from service.protocol.receipts import message_digest

# The event that created a stored message, by the message's direction.
_CREATING = {ev.MESSAGE_ACCEPTED: "in", ev.MESSAGE_QUEUED: "out"}
# Events whose `digest` is the digest of a message's bytes (received, queued or sent).
_DIGEST_EVENTS = frozenset({ev.MESSAGE_ACCEPTED, ev.MESSAGE_QUEUED, ev.DELIVERY_ATTEMPT})


@dataclass
class StoredReport:
    messages: int = 0
    copies: int = 0
    purged: int = 0
    unsent: int = 0
    files: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class _Logged:
    digests: dict[str, set[str]] = field(default_factory=dict)
    created: dict[tuple[str, str], int] = field(default_factory=dict)
    # The attachment digests the creating entry of each message committed to.
    files: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def add_digest(self, message_id: str, digest: object) -> None:
        if isinstance(digest, str):
            self.digests.setdefault(message_id, set()).add(digest)

    def has(self, message_id: str, digest: str) -> bool:
        return digest in self.digests.get(message_id, ())


def _read_log(lines: Iterable[bytes]) -> _Logged:
    logged = _Logged()
    for line in lines:
        if not line.strip():
            continue
        # The hashed bytes, which `migex audit verify` checked, not the readable copy.
        record = json.loads(line)
        entry = json.loads(base64.b64decode(record["leaf_data"]))
        columns = record.get("columns")
        wrong = column_mismatches(columns, entry) if isinstance(columns, dict) else []
        if wrong:
            logged.findings.append(
                f"entry {entry.get('index')}: its stored search columns differ from the "
                f"signed entry ({', '.join(wrong)})"
            )
        message_id, event = entry.get("message_id"), entry.get("event")
        if not isinstance(message_id, str):
            continue
        if event in _DIGEST_EVENTS:
            logged.add_digest(message_id, entry.get("digest"))
        elif event == ev.RECEIPT_RECEIVED:
            detail = entry.get("detail")
            if isinstance(detail, dict):
                logged.add_digest(message_id, detail.get("message_digest"))
        if event in _CREATING:
            key = (_CREATING[event], message_id)
            logged.created.setdefault(key, int(entry["index"]))
            detail = entry.get("detail")
            named = detail.get("attachments") if isinstance(detail, dict) else None
            if isinstance(named, list):
                logged.files.setdefault(key, set()).update(
                    str(a.get("digest")) for a in named if isinstance(a, dict)
                )
    return logged


def _check_files(
    conn: Connection, store: AttachmentStore | None, logged: _Logged, report: StoredReport
) -> None:
    """Each file a stored message names is in the log's entry for it and, unless purged,
    in the store with bytes that hash to that digest."""
    a, m = attachments.c, messages.c
    rows = conn.execute(
        select(m.direction, m.message_id, a.position, a.digest, a.purged_at)
        .join(messages, m.pk == a.message_pk)
        .order_by(a.message_pk, a.position)
    )
    for row in rows:
        report.files += 1
        name = f"message {row.message_id} ({row.direction}), attachment {row.position}"
        if row.digest not in logged.files.get((row.direction, row.message_id), set()):
            report.findings.append(f"{name}: its digest is not in the log's entry")
        if row.purged_at is not None or store is None:
            continue
        if not store.exists(row.digest):
            report.findings.append(f"{name}: its file is not in the attachment store")
            continue
        try:
            with store.open(row.digest) as stream:
                found, _ = digest_of(stream)
        except AttachmentUnreadable as exc:
            report.findings.append(f"{name}: {exc}")
            continue
        if found != row.digest:
            report.findings.append(f"{name}: its stored bytes do not hash to its digest")


def check_stored(
    engine: Engine,
    export: Iterable[bytes],
    *,
    store: AttachmentStore | None = None,
    bodies: Bodies = PLAINTEXT,
) -> StoredReport:
    """Check the messages stored in `engine`'s database against the exported log, and
    their attachment files in `store`.

    A sealed body is opened with `bodies` only to hash it; one that does not open (a
    KEK not given, or bytes altered or moved) is a finding."""
    logged = _read_log(export)
    report = StoredReport(findings=list(logged.findings))
    stored: set[tuple[str, str]] = set()
    m, o, v = messages.c, outbox.c, signed_versions.c
    with engine.connect() as conn:
        copies: dict[int, set[str]] = {}
        for copy in (
            conn.execution_options(yield_per=1000)
            .execute(
                select(
                    v.message_pk, v.version, v.digest, v.jws, v.kek_id, v.wrapped_key, m.message_id
                ).join(messages, m.pk == v.message_pk)
            )
            .mappings()
        ):
            report.copies += 1
            copies.setdefault(int(copy["message_pk"]), set()).add(copy["digest"])
            name = f"message {copy['message_id']}: signed copy {copy['version']}"
            aad = version_aad(copy["message_id"], int(copy["version"]))
            token = _opened(report, bodies, copy, aad, name)
            if token is not None and message_digest(token) != copy["digest"]:
                report.findings.append(f"{name} does not hash to its recorded digest")
        for row in (
            conn.execution_options(yield_per=1000)
            .execute(
                select(
                    m.pk,
                    m.direction,
                    m.sender,
                    m.message_id,
                    m.digest,
                    m.jws,
                    m.kek_id,
                    m.wrapped_key,
                    o.state,
                ).outerjoin(outbox, o.message_pk == m.pk)
            )
            .mappings()
        ):
            report.messages += 1
            name = f"message {row['message_id']} ({row['direction']})"
            stored.add((row["direction"], row["message_id"]))
            if row["jws"] is None:
                report.purged += 1
            else:
                aad = message_aad(row["sender"], row["message_id"])
                token = _opened(report, bodies, row, aad, name)
                if token is None:
                    continue
                if message_digest(token) != row["digest"]:
                    report.findings.append(f"{name}: its stored bytes do not hash to its digest")
                    continue
            if logged.has(row["message_id"], row["digest"]):
                continue
            if row["state"] == "pending" and row["digest"] in copies.get(int(row["pk"]), set()):
                # Signed again while waiting and not sent since: its attempt will log it.
                report.unsent += 1
                continue
            report.findings.append(f"{name}: its digest is not in the log")
        _check_files(conn, store, logged, report)
    for (direction, message_id), index in sorted(logged.created.items(), key=lambda i: i[1]):
        if (direction, message_id) not in stored:
            report.findings.append(
                f"message {message_id} ({direction}): in the log at index {index}, not stored"
            )
    return report


def _opened(
    report: StoredReport, bodies: Bodies, row: Mapping[Any, Any], aad: bytes, name: str
) -> bytes | None:
    """The stored body of `row` as received or signed; None (and a finding) if it does not open."""
    try:
        return bodies.open(row, aad)
    except BodyUnreadable as exc:
        report.findings.append(f"{name}: its stored body does not open: {exc}")
        return None
