"""Attachments under retention and audit, on both databases: a purge treats a message's
files as its body (rows marked purged, a file removed once no unpurged message names
it, the purge's entry counting them), and `migex audit messages` checks every stored
file against the digest the log committed to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.audit.stored import check_stored
from service.clock import FixedClock
from service.db.tables import attachments, pending_messages
from service.exchange.periods import DAY, RetentionPolicy
from service.exchange.retention import purge_sync
from tests.api.test_attachments_inbound import (
    EXCHANGE,
    LIMITS,
    OTHER_PDF,
    PDF,
    TUS,
    TYPE,
    _limits,
    _upload,
    digest,
    item,
)
from tests.api.test_messages import audit_entries, node_of, post
from tests.support.nodes import AUDITOR_TOKEN, Federation, envelope_for, example_body


@pytest.fixture
def client(client_factory: Callable[[Callable[[dict[str, Any]], None]], TestClient]) -> TestClient:
    """A node whose partner UZ:MIA may send files."""
    return client_factory(_limits(LIMITS))


def _accepted(client: TestClient, federation: Federation, clock: FixedClock, *files: bytes) -> None:
    """Send a notice naming `files` now, upload them, and see it accepted."""
    body = {**example_body(TYPE), "attachments": [item(f) for f in files]}
    env = envelope_for(federation.uz, msg_type=TYPE, body=body, iat=int(clock.now), **EXCHANGE)
    token = federation.uz.sign(env)
    offer = post(client, token).json()
    for index, data in enumerate(files):
        if offer["attachments"][index]["offset"] < len(data):
            assert _upload(client, offer, index, data).status_code == 204
    assert post(client, token).status_code == 201


def _purge(client: TestClient, clock: FixedClock) -> Any:
    node = node_of(client)
    return purge_sync(node.committer, now=clock.now, policy=RetentionPolicy(1), store=node.store)


def _purged_rows(client: TestClient) -> list[tuple[str, bool]]:
    with node_of(client).engines.reader.connect() as conn:
        rows = conn.execute(
            select(attachments.c.digest, attachments.c.purged_at).order_by(
                attachments.c.message_pk, attachments.c.position
            )
        )
        return [(r.digest, r.purged_at is not None) for r in rows]


def test_a_purge_removes_a_file_once_no_unpurged_message_names_it(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    store = node_of(client).store
    _accepted(client, federation, clock, PDF)
    clock.advance(2 * DAY)
    _accepted(client, federation, clock, PDF, OTHER_PDF)

    first = _purge(client, clock)
    assert first.count == 1
    assert _purged_rows(client) == [(digest(PDF), True), (digest(PDF), False),
                                    (digest(OTHER_PDF), False)]  # fmt: skip
    assert store.exists(digest(PDF))  # the second message still names it

    clock.advance(2 * DAY)
    second = _purge(client, clock)
    assert second.count == 1
    assert not store.exists(digest(PDF))
    assert not store.exists(digest(OTHER_PDF))
    purges = [e for e in audit_entries(client) if e["event"] == "retention.purge"][::-1]
    assert [(e["detail"]["attachments"], e["detail"]["files_removed"]) for e in purges] == [
        (1, 0),
        (2, 2),
    ]
    # The purged files are gone from the inbox too.
    resp = client.get(
        f"/v1/inbox/UZ:MIA/{_ids(client)[-1]}/attachments/{digest(PDF)}",
        headers={"Authorization": "Bearer test-client-token-0000000000000000000000"},
    )
    assert resp.status_code == 404


def _ids(client: TestClient) -> list[str]:
    """The accepted messages' ids, oldest first (the search answers newest first)."""
    accepted = [e for e in audit_entries(client) if e["event"] == "message.accepted"]
    return [e["message_id"] for e in reversed(accepted)]


def _export(client: TestClient) -> list[bytes]:
    text = client.get("/v1/audit/export", headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"}).text
    return [line.encode() for line in text.splitlines()]


def test_audit_messages_checks_each_file_against_the_logged_digest(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    node = node_of(client)
    _accepted(client, federation, clock, PDF, OTHER_PDF)
    report = check_stored(node.engines.reader, _export(client), store=node.store)
    assert (report.ok, report.files) == (True, 2), report.findings

    path = node.store.root / "objects" / digest(PDF)[8:10] / digest(PDF)[8:]
    path.write_bytes(OTHER_PDF)  # the file changed on disk behind the node's back
    node.store.delete(digest(OTHER_PDF))
    report = check_stored(node.engines.reader, _export(client), store=node.store)
    assert [f.split(": ", 1)[1] for f in report.findings] == [
        "its stored bytes do not hash to its digest",
        "its file is not in the attachment store",
    ]


def test_an_upload_whose_window_closed_is_expired_audited_and_its_bytes_dropped(
    client: TestClient, federation: Federation, clock: FixedClock
) -> None:
    node = node_of(client)
    body = {**example_body(TYPE), "attachments": [item(PDF)]}
    env = envelope_for(federation.uz, msg_type=TYPE, body=body, iat=int(clock.now), **EXCHANGE)
    offer = post(client, federation.uz.sign(env)).json()
    assert _upload(client, offer, 0, PDF[:1000]).status_code == 204
    staging = node.store.root / "staging"
    assert [p.stat().st_size for p in staging.iterdir()] == [1000]

    clock.advance(86_401)
    _purge(client, clock)
    assert list(staging.iterdir()) == []
    [refused] = [e for e in audit_entries(client) if e["event"] == "message.refused"]
    assert (refused["code"], refused["message_id"]) == ("attachment-incomplete", env.id)
    _purge(client, clock)  # expired once: no second entry
    assert len([e for e in audit_entries(client) if e["event"] == "message.refused"]) == 1
    # The body (personal data) went with the window; what refuses the bytes stays.
    with node.engines.reader.connect() as conn:
        row = conn.execute(select(pending_messages)).one()
    assert (row.jws, row.kek_id, row.wrapped_key, row.attachments, row.warnings) == (
        None,
        None,
        None,
        "[]",
        None,
    )
    assert (row.message_id, row.expired_at) == (env.id, clock.now)
    resp = _upload(client, offer, 0, PDF)
    assert (resp.status_code, resp.json()["code"]) == (410, "attachment-incomplete")
    bearer = {**TUS, "Authorization": f"Bearer {offer['upload_token']}"}
    assert client.head(offer["attachments"][0]["url"], headers=bearer).status_code == 410
    resp = post(client, federation.uz.sign(env))
    assert (resp.status_code, resp.json()["code"]) == (410, "attachment-incomplete")
