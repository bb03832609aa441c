"""Encryption at rest on SQLite and PostgreSQL: bodies sealed under the configured KEK,
read back through the API, sent, receipted and checked by `migex audit messages`;
rows written in the clear before a KEK was configured; KEK rotation; a wrong or
missing KEK refused at start (docs/privacy.md, "Encryption at rest")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.audit import queries
from service.audit.stored import check_stored
from service.cli import app as cli_app
from service.clock import FixedClock
from service.config import load_config
from service.db.tables import audit_entries, messages, signed_versions
from service.privacy.keks import KekRefused
from service.protocol import envelope, jws
from service.protocol.receipts import message_digest
from service.runtime import Node, build_node
from tests.support.atrest import (
    CLIENT,
    configure,
    deliver,
    node_of,
    personal_values_in,
    receive,
    send_request,
    start,
    traffic,
    write_kek,
)
from tests.support.nodes import Federation
from tests.unit.exchange.partner import FakePartner


@pytest.fixture
def keks(tmp_path: Path) -> dict[str, Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    return {"k1": write_kek(secrets, "k1.kek", 1), "k2": write_kek(secrets, "k2.kek", 77)}


def body_rows(node: Node) -> list[dict[str, Any]]:
    """Every stored body's columns, of messages and signed copies."""
    with node.engines.reader.connect() as conn:
        rows = [
            dict(r)
            for table in (messages, signed_versions)
            for r in conn.execute(select(table.c.jws, table.c.kek_id, table.c.wrapped_key))
            .mappings()
            .all()
        ]
    return rows


def kek_events(node: Node) -> list[dict[str, Any]]:
    with node.engines.reader.connect() as conn:
        leaves = conn.execute(
            select(audit_entries.c.leaf_data)
            .where(audit_entries.c.event == "privacy.kek-rotated")
            .order_by(audit_entries.c.idx)
        ).scalars()
        return [json.loads(leaf) for leaf in leaves]


def export(node: Node, path: Path) -> Path:
    with node.engines.reader.connect() as conn:
        size = conn.execute(
            select(audit_entries.c.idx).order_by(audit_entries.c.idx.desc())
        ).first()
    end = 0 if size is None else int(size[0]) + 1
    path.write_bytes(
        b"".join(line + b"\n" for line in queries.export_lines(node.engines.reader, 0, end))
    )
    return path


def test_a_round_trip_with_encryption_on_is_sealed_read_back_delivered_and_verified(
    federation: Federation, clock: FixedClock, keks: dict[str, Path], tmp_path: Path
) -> None:
    partner = FakePartner(federation.uz, federation.kz.key.public(), clock)
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        node = node_of(client)
        request_id, token, receipt = receive(client, federation)
        sent_id = send_request(client)
        assert deliver(node, partner, clock) == 1

        inbox = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        status = client.get(f"/v1/outbox/{sent_id}", headers=CLIENT).json()
        rows = body_rows(node)
        lines = list(queries.export_lines(node.engines.reader, 0, 10_000))
        stored_ok = check_stored(node.engines.reader, lines, bodies=node.bodies)
        without_kek = check_stored(node.engines.reader, lines)
        export_file = export(node, tmp_path / "log.jsonl")

    # The receipt covers the bytes as received; the API gives the body back.
    receipt_body = envelope.parse_payload(jws.parse_compact(receipt).payload).body
    assert receipt_body["digest"] == message_digest(token)
    [item] = [m for m in inbox if m["id"] == request_id]
    assert item["body"] == envelope.parse_payload(jws.parse_compact(token).payload).body
    # The partner got the signed bytes, whose digest its receipt names.
    assert status["status"] == "delivered"
    assert status["receipt"]["payload"]["body"]["digest"] == message_digest(partner.posts[0])
    # Every stored body is sealed under k1 and names nobody.
    assert len(rows) == 3  # the message in, the message out, its signed copy
    assert {r["kek_id"] for r in rows} == {"k1"}
    assert all(len(r["wrapped_key"]) == 40 for r in rows)
    assert not any(personal_values_in(bytes(r["jws"])) for r in rows)
    # `migex audit messages` opens them to hash them; without the KEK they do not open.
    assert stored_ok.ok, stored_ok.findings
    assert (stored_ok.messages, stored_ok.copies) == (2, 1)
    assert not without_kek.ok
    assert all("does not open" in f for f in without_kek.findings)
    config = configure(federation, {"k1": keks["k1"]})
    result = CliRunner().invoke(
        cli_app, ["audit", "messages", "-c", str(config), "--export", str(export_file)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 2 messages")


def test_a_body_moved_to_another_row_does_not_open(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        node = node_of(client)
        first, _, _ = receive(client, federation)
        second, _, _ = receive(client, federation)
        m = messages.c
        with node.engines.writer.begin() as conn:
            moved = conn.execute(select(m.jws, m.wrapped_key).where(m.message_id == first)).one()
            conn.execute(
                messages.update()
                .where(m.message_id == second)
                .values(jws=moved.jws, wrapped_key=moved.wrapped_key)
            )
        lines = list(queries.export_lines(node.engines.reader, 0, 10_000))
        report = check_stored(node.engines.reader, lines, bodies=node.bodies)
    assert [f for f in report.findings if second in f and "does not open" in f]
    assert not [f for f in report.findings if first in f]


def test_rows_stored_in_the_clear_stay_readable_and_rotate_kek_seals_them(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {}) as client:
        ids = traffic(client, federation)
        assert {r["kek_id"] for r in body_rows(node_of(client))} == {None}
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        before = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        receive(client, federation)  # a new one is sealed at once
        assert {r["kek_id"] for r in body_rows(node_of(client))} == {None, "k1"}
    config = configure(federation, {"k1": keks["k1"]})

    result = CliRunner().invoke(cli_app, ["privacy", "rotate-kek", "-c", str(config)])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sealed"] == {"messages": 3, "signed_versions": 1, "pending_messages": 0}
    assert report["left"] == {"messages": 0, "signed_versions": 0, "pending_messages": 0}
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        node = node_of(client)
        rows = body_rows(node)
        after = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        events = kek_events(node)
    assert {r["kek_id"] for r in rows} == {"k1"}
    assert not any(personal_values_in(bytes(r["jws"])) for r in rows)
    assert [m["body"] for m in after[: len(before)]] == [m["body"] for m in before]
    assert {m["id"] for m in before} == {ids["request"], ids["notice"]}
    # One audited batch per table (each under the batch size of 500).
    assert [e["detail"]["sealed"] for e in events] == [
        {"messages": 3, "signed_versions": 0, "pending_messages": 0},
        {"messages": 0, "signed_versions": 1, "pending_messages": 0},
    ]
    assert {e["detail"]["to"] for e in events} == {"k1"}


def test_rotation_rewraps_data_keys_and_leaves_every_ciphertext_as_it_was(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        traffic(client, federation)
        receive(client, federation)
        old = body_rows(node_of(client))
    config = configure(federation, keks, active="k2")
    refused = CliRunner().invoke(cli_app, ["privacy", "rotate-kek", "-c", str(config)])
    with start(federation, clock, keks, active="k2"):  # the node restarted with k2 active
        pass

    result = CliRunner().invoke(
        cli_app, ["privacy", "rotate-kek", "-c", str(config), "--batch-size", "2"]
    )

    # Not before the node itself seals under k2: it would write behind the rotation.
    assert refused.exit_code == 1
    assert "rotation refused: the node last started with active KEK k1" in refused.output
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rewrapped"] == {"messages": 4, "signed_versions": 1, "pending_messages": 0}
    assert report["retired"] == ["k1"]
    assert report["from"] == ["k1"]
    with start(federation, clock, {"k2": keks["k2"]}) as client:  # k1 is no longer needed
        node = node_of(client)
        new = body_rows(node)
        inbox = client.get("/v1/inbox", headers=CLIENT).json()["messages"]
        events = kek_events(node)
    assert sorted(bytes(r["jws"]) for r in new) == sorted(bytes(r["jws"]) for r in old)
    assert {r["kek_id"] for r in new} == {"k2"}
    assert not {bytes(r["wrapped_key"]) for r in new} & {bytes(r["wrapped_key"]) for r in old}
    assert all(m["body"] for m in inbox)
    assert len(events) == report["batches"] == 3  # 2 + 2 messages, then 1 signed copy
    assert sum(e["detail"]["rewrapped"]["messages"] for e in events) == 4
    assert {tuple(e["detail"]["from"]) for e in events} == {("k1",)}


def test_a_wrong_kek_is_refused_at_start_naming_its_file(
    federation: Federation, clock: FixedClock, keks: dict[str, Path], tmp_path: Path
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        receive(client, federation)
    wrong = {"k1": keks["k2"]}  # another key under the same id

    with pytest.raises(KekRefused, match=f"KEK file {keks['k2']} .*check value does not open"):
        build_node(load_config(configure(federation, wrong)), clock=clock).close()
    result = CliRunner().invoke(
        cli_app, ["retention", "holds", "-c", str(configure(federation, wrong))]
    )
    assert result.exit_code == 1
    assert str(keks["k2"]) in result.output


def test_a_missing_kek_is_refused_at_start_naming_its_id(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}) as client:
        receive(client, federation)

    with pytest.raises(KekRefused, match="sealed under key-encryption key 'k1', which is not"):
        build_node(load_config(configure(federation, {})), clock=clock).close()
    with pytest.raises(KekRefused, match="'k1'"):
        build_node(load_config(configure(federation, {"k2": keks["k2"]})), clock=clock).close()


def test_serve_refuses_a_wrong_kek_in_one_line_before_listening(
    federation: Federation, clock: FixedClock, keks: dict[str, Path]
) -> None:
    with start(federation, clock, {"k1": keks["k1"]}):
        pass
    config = configure(federation, {"k1": keks["k2"]})

    result = CliRunner().invoke(cli_app, ["serve", "-c", str(config)])

    assert result.exit_code == 1
    assert f"refused to start: KEK file {keks['k2']}" in result.output


def test_a_kek_file_of_the_wrong_size_is_a_configuration_error(
    federation: Federation, keks: dict[str, Path]
) -> None:
    short = keks["k1"].parent / "short.kek"
    short.write_bytes(b"x" * 16)
    short.chmod(0o600)
    result = CliRunner().invoke(
        cli_app, ["config", "check", str(configure(federation, {"k1": short}))]
    )
    assert result.exit_code == 1
    assert f"KEK file {short} holds 16 bytes; it must hold exactly 32" in result.output
