"""The audit search columns are an index, not the record: every auditor path checks
them against the signed leaf (SQLite and PostgreSQL).

Each test changes one column of one row with SQL, as a database administrator could,
without touching the leaf or the tree, and shows that the path catches it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from service.audit import queries
from service.audit.offline import verify_export
from service.audit.proving import prove_message
from service.audit.stored import check_stored
from service.cli import app as cli_app
from service.db.tables import audit_entries
from service.runtime import Node
from tests.support.nodes import AUDITOR_TOKEN, Federation, envelope_for

AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
JOSE = {"Content-Type": "application/jose"}
NEVER_SENT = "0b7e5d9a-1c2f-4e3d-8a5b-6c7d8e9f0a1b"

# One changed value per search column, each different from the stored one.
TAMPERED: dict[str, Any] = {
    "event": "message.redelivered",
    "party": "KG:SRS",
    "message_id": NEVER_SENT,
    "type": "readmission.request",
    "outcome": "refused",
    "code": "schema",
    "time": 1_700_000_000.0,
}


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _accept(client: TestClient, federation: Federation) -> tuple[str, int]:
    env = envelope_for(federation.uz)
    resp = client.post("/v1/messages", content=federation.uz.sign(env), headers=JOSE)
    assert resp.status_code == 201, resp.text
    with _node(client).engines.reader.connect() as conn:
        idx = conn.execute(
            select(audit_entries.c.idx).where(audit_entries.c.message_id == env.id)
        ).scalar_one()
    return env.id, int(idx)


def _tamper(client: TestClient, idx: int, **values: Any) -> None:
    with _node(client).engines.writer.begin() as conn:
        conn.execute(update(audit_entries).where(audit_entries.c.idx == idx).values(**values))


def _signed_state(client: TestClient) -> tuple[str, str, list[bytes]]:
    """A checkpoint covering every entry so far, its key, and the export."""
    note = client.get("/v1/audit/checkpoint", headers=AUDITOR).text
    vkey = client.get("/.well-known/migex-audit-key").text.strip()
    size = int(note.splitlines()[1])
    lines = list(queries.export_lines(_node(client).engines.reader, 0, size))
    return note, vkey, lines


def _prove(client: TestClient, message_id: str, note: str, vkey: str) -> list[str]:
    return prove_message(
        "http://testserver", AUDITOR_TOKEN, message_id, note, vkey, transport=client._transport
    )


def test_untouched_columns_pass_every_check(client: TestClient, federation: Federation) -> None:
    message_id, _ = _accept(client, federation)
    note, vkey, lines = _signed_state(client)
    assert all(b'"columns":{' in line for line in lines)
    assert verify_export(lines, note, vkey).ok
    assert check_stored(_node(client).engines.reader, lines).ok
    assert client.get("/v1/audit/search", headers=AUDITOR).status_code == 200
    assert _prove(client, message_id, note, vkey)[0].startswith("ok: entry ")


@pytest.fixture(params=sorted(TAMPERED))
def changed(
    request: pytest.FixtureRequest, client: TestClient, federation: Federation
) -> tuple[str, int]:
    """The name of the column changed, and the index of the accepted message's entry."""
    column: str = request.param
    _, idx = _accept(client, federation)
    _tamper(client, idx, **{column: TAMPERED[column]})
    return column, idx


def test_search_refuses_to_answer_from_a_changed_column(
    client: TestClient, changed: tuple[str, int]
) -> None:
    column, idx = changed
    resp = client.get("/v1/audit/search", headers=AUDITOR, params={"limit": 1000})
    assert resp.status_code == 500, resp.text
    problem = resp.json()
    assert problem["code"] == "audit-inconsistent"
    assert f"entry {idx}: {column}" in problem["detail"]


def test_verify_finds_a_changed_column_in_the_export(
    client: TestClient, changed: tuple[str, int]
) -> None:
    column, idx = changed
    note, vkey, lines = _signed_state(client)
    report = verify_export(lines, note, vkey)
    assert not report.ok
    assert report.first_bad_index == idx
    assert report.reason is not None
    assert report.reason.endswith(f"differ from the signed entry: {column}")


def test_audit_messages_reports_a_changed_column(
    client: TestClient, changed: tuple[str, int]
) -> None:
    column, idx = changed
    _, _, lines = _signed_state(client)
    report = check_stored(_node(client).engines.reader, lines)
    assert f"entry {idx}: its stored search columns differ from the signed entry ({column})" in (
        report.findings
    )


def test_prove_does_not_show_a_never_sent_message_as_included(
    client: TestClient, federation: Federation
) -> None:
    _, idx = _accept(client, federation)
    _tamper(client, idx, message_id=NEVER_SENT)
    note, vkey, _ = _signed_state(client)
    with pytest.raises(ValueError, match="audit-inconsistent"):
        _prove(client, NEVER_SENT, note, vkey)


def test_prove_does_not_trust_a_search_answer_about_another_message(
    client: TestClient, federation: Federation
) -> None:
    # A node that lies in its search answer (not only in its columns) is caught by
    # prove itself: the leaf it returns must be about the message asked for.
    message_id, _ = _accept(client, federation)
    note, vkey, _ = _signed_state(client)
    inner = client._transport
    assert isinstance(inner, httpx.BaseTransport)

    def lying(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/audit/search":
            url = request.url.copy_set_param("message_id", message_id)
            request = httpx.Request("GET", url, headers=request.headers)
        response = inner.handle_request(request)
        response.read()
        return response

    with pytest.raises(ValueError, match=rf"signed entry is about message {message_id}"):
        prove_message(
            "http://testserver",
            AUDITOR_TOKEN,
            NEVER_SENT,
            note,
            vkey,
            transport=httpx.MockTransport(lying),
        )


def test_a_hidden_message_is_not_proven_and_verify_finds_it(
    client: TestClient, federation: Federation
) -> None:
    message_id, idx = _accept(client, federation)
    _tamper(client, idx, message_id=str(uuid.uuid4()))
    note, vkey, lines = _signed_state(client)
    with pytest.raises(ValueError, match="no entry for message"):
        _prove(client, message_id, note, vkey)
    report = verify_export(lines, note, vkey)
    assert (report.ok, report.first_bad_index) == (False, idx)


def test_the_cli_verify_fails_on_a_changed_column(
    client: TestClient, federation: Federation, tmp_path: Path
) -> None:
    _, idx = _accept(client, federation)
    _tamper(client, idx, party="KG:SRS")
    note, vkey, lines = _signed_state(client)
    export, cp = tmp_path / "log.jsonl", tmp_path / "checkpoint.txt"
    export.write_bytes(b"".join(lines))
    cp.write_text(note)
    result = CliRunner().invoke(
        cli_app,
        ["audit", "verify", "--export", str(export), "--checkpoint", str(cp), "--key", vkey],
    )
    assert result.exit_code != 0
    assert f"FAILED at entry {idx}" in result.output
    assert "party" in result.output


def test_an_entries_page_refuses_a_row_under_another_index(
    client: TestClient, federation: Federation
) -> None:
    _, idx = _accept(client, federation)
    with _node(client).engines.reader.connect() as conn:
        leaf = conn.execute(
            select(audit_entries.c.leaf_data).where(audit_entries.c.idx == idx - 1)
        ).scalar_one()
    _tamper(client, idx, leaf_data=leaf)
    resp = client.get("/v1/audit/entries", headers=AUDITOR, params={"start": 0, "end": idx + 1})
    assert resp.status_code == 500
    assert resp.json()["code"] == "audit-inconsistent"
    assert json.loads(leaf)["index"] == idx - 1
