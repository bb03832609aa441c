"""Attachment files sealed at rest on SQLite and PostgreSQL (docs/privacy.md,
"Encryption at rest"): a received file is sealed in the store and read back whole
through the inbox API; `migex audit messages` opens it to hash it; an altered file is
refused with a problem, not a byte of it sent; a file stored before the KEK was
configured stays readable and is sealed by `migex privacy rotate-kek`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select
from typer.testing import CliRunner

from service.audit import queries
from service.audit.stored import StoredReport, check_stored
from service.cli import app as cli_app
from service.clock import FixedClock
from service.db.tables import pending_messages
from service.protocol.receipts import sha256_digest
from service.runtime import Node
from tests.integration.test_encryption_at_rest import body_rows, kek_events
from tests.support.atrest import (
    CLIENT,
    configure,
    node_of,
    offer_file,
    personal_pdf,
    personal_values_in,
    receive_with_file,
    start,
    stored_files,
    upload,
    upload_and_accept,
    write_kek,
)
from tests.support.nodes import Federation

PDF = personal_pdf()


@pytest.fixture
def keks(tmp_path: Path) -> dict[str, Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    return {"k1": write_kek(secrets, "k1.kek", 1), "k2": write_kek(secrets, "k2.kek", 77)}


def _file_url(message_id: str) -> str:
    return f"/v1/inbox/UZ:MIA/{message_id}/attachments/{sha256_digest(PDF)}"


def _received_then_read(
    federation: Federation, clock: FixedClock, kek: Path, alter: bool
) -> tuple[list[Path], Response, StoredReport]:
    """A file received under `kek` (altered on disk if `alter`), read back through the
    inbox API and checked by `check_stored`."""
    with start(federation, clock, {"k1": kek}) as client:
        message_id = receive_with_file(client, federation, PDF)
        node = node_of(client)
        files = stored_files(node)
        if alter:
            raw = bytearray(files[0].read_bytes())
            raw[len(raw) // 2] ^= 0x01
            files[0].write_bytes(bytes(raw))
        resp = client.get(_file_url(message_id), headers=CLIENT)
        lines = list(queries.export_lines(node.engines.reader, 0, 10_000))
        report = check_stored(node.engines.reader, lines, store=node.store, bodies=node.bodies)
    return files, resp, report


def test_a_received_file_is_sealed_in_the_store_and_read_back_whole(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    files, resp, report = _received_then_read(federation, clock, keks["k1"], alter=False)

    assert resp.status_code == 200, resp.text
    assert resp.content == PDF
    assert len(files) == 1  # the staged upload is gone
    assert not any(personal_values_in(f.read_bytes()) for f in files)
    assert report.ok, report.findings
    assert report.files == 1


def test_an_altered_sealed_file_is_a_problem_and_no_byte_of_it_is_sent(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    _, resp, report = _received_then_read(federation, clock, keks["k1"], alter=True)

    assert resp.status_code == 500
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "stored-unreadable"
    assert "Traceback" not in resp.text
    assert [f for f in report.findings if "does not open" in f]


def test_a_file_from_before_the_kek_stays_readable_and_rotate_kek_seals_it(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {}) as client:
        message_id = receive_with_file(client, federation, PDF)
        [path] = stored_files(node_of(client))
    assert personal_values_in(path.read_bytes())  # in the clear: the scan sees it
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        before = client.get(_file_url(message_id), headers=CLIENT)
    config = configure(federation, {"k1": keks["k1"]})

    result = CliRunner().invoke(cli_app, ["privacy", "rotate-kek", "-c", str(config)])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["files"] == {"sealed": 1, "rewrapped": 0, "left": 0}
    assert not personal_values_in(path.read_bytes())
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        after = client.get(_file_url(message_id), headers=CLIENT)
    assert before.content == after.content == PDF

    # Rotated again to k2: the file's header is re-wrapped, and k1 is then not needed.
    with start(federation, clock, keks, active="k2"):
        pass
    config = configure(federation, keks, active="k2")
    result = CliRunner().invoke(cli_app, ["privacy", "rotate-kek", "-c", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["files"] == {"sealed": 0, "rewrapped": 1, "left": 0}
    assert report["retired"] == ["k1"]
    with start(federation, clock, {"k2": keks["k2"]}) as client:
        again = client.get(_file_url(message_id), headers=CLIENT)
        events = kek_events(node_of(client))
    assert again.content == PDF
    files = [e for e in events if "attachments" in e["detail"]["sealed"]]
    assert [(e["detail"]["sealed"], e["detail"]["rewrapped"]) for e in files] == [
        ({"attachments": 1}, {"attachments": 0}),
        ({"attachments": 0}, {"attachments": 1}),
    ]
    assert [e["detail"]["from"] for e in files] == [[], ["k1"]]


def _pending_rows(node: Node) -> list[dict[str, Any]]:
    with node.engines.reader.connect() as conn:
        p = pending_messages.c
        return [
            dict(r)
            for r in conn.execute(select(p.message_id, p.jws, p.kek_id, p.wrapped_key)).mappings()
        ]


def test_a_message_awaiting_its_files_is_sealed_and_accepted_sealed(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        message_id, token, offer = offer_file(client, federation, PDF)
        [pending] = _pending_rows(node_of(client))
        # Its upload endpoints read it (they open the sealed message to check the token).
        upload_and_accept(client, token, offer, PDF)
        remaining = _pending_rows(node_of(client))
        inbox = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        [stored] = body_rows(node_of(client))

    assert (pending["message_id"], pending["kek_id"]) == (message_id, "k1")
    assert personal_values_in(token)  # what the scan finds in the clear ...
    assert not personal_values_in(bytes(pending["jws"]))  # ... is not in the sealed row
    assert remaining == []
    assert [m["id"] for m in inbox] == [message_id]
    assert stored["kek_id"] == "k1"


def test_a_pending_message_from_before_the_kek_is_read_and_sealed_by_rotate_kek(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {}) as client:
        message_id, token, _ = offer_file(client, federation, PDF)
        [before] = _pending_rows(node_of(client))
    config = configure(federation, {"k1": keks["k1"]})
    with start(federation, clock, {"k1": keks["k1"]}):
        pass

    result = CliRunner().invoke(cli_app, ["privacy", "rotate-kek", "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sealed"]["pending_messages"] == 1
    # (The rotation's audit entries carry the real time, past the test clock's upload
    # window: the message is read back as the upload endpoints read it.)
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        node = node_of(client)
        [after] = _pending_rows(node)
        read_back = node.bodies.open_pending(after, "UZ:MIA", message_id)
    assert read_back == token
    assert before["kek_id"] is None
    assert personal_values_in(bytes(before["jws"]))
    assert after["kek_id"] == "k1"
    assert not personal_values_in(bytes(after["jws"]))


def test_an_altered_pending_message_is_a_problem_to_its_uploads(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        message_id, _, offer = offer_file(client, federation, PDF)
        node = node_of(client)
        [row] = _pending_rows(node)
        altered = bytearray(row["jws"])
        altered[-1] ^= 0x01
        with node.engines.writer.begin() as conn:
            conn.execute(
                pending_messages.update()
                .where(pending_messages.c.message_id == message_id)
                .values(jws=bytes(altered))
            )
        resp = upload(client, offer, PDF)

    assert resp.status_code == 500
    assert resp.json()["code"] == "stored-unreadable"
    assert stored_files(node) == []  # not a byte of the upload was taken
