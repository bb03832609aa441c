"""The `migex` command: keys, configuration checks, tokens, schemas, audit export and verify."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from service.api.tokens import hash_token
from service.cli import app
from service.config import load_config
from service.db.engine import create_engines
from service.db.tables import messages, signed_versions
from service.main import create_app
from service.protocol.receipts import message_digest
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    Federation,
    envelope_for,
    outbox_statistics,
)

runner = CliRunner()


def test_keys_generate_writes_a_private_key_readable_only_by_its_owner(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    result = runner.invoke(app, ["keys", "generate", "--kid", "KZ:MIA#2027-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    jwk = json.loads(result.stdout)
    assert (jwk["kty"], jwk["crv"], jwk["kid"]) == ("OKP", "Ed25519", "KZ:MIA#2027-01")
    assert "d" not in jwk


def test_keys_generate_p256_with_a_jwk_file(tmp_path: Path) -> None:
    out, jwk_out = tmp_path / "k.pem", tmp_path / "pub" / "k.jwk.json"
    result = runner.invoke(
        app,
        [
            "keys",
            "generate",
            "--kid",
            "KG:SRS#1",
            "--out",
            str(out),
            "--kind",
            "p256",
            "--jwk-out",
            str(jwk_out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(jwk_out.read_text())["crv"] == "P-256"


def test_keys_generate_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    out.write_text("existing")
    result = runner.invoke(app, ["keys", "generate", "--kid", "KZ:MIA#1", "--out", str(out)])
    assert result.exit_code == 1
    assert out.read_text() == "existing"


def test_config_check_accepts_a_valid_file(federation: Federation) -> None:
    result = runner.invoke(app, ["config", "check", str(federation.write_config())])
    assert result.exit_code == 0, result.output
    assert "ok (KZ:MIA, 2 partners)" in result.stdout


def test_config_check_names_the_line_of_a_bad_rule(federation: Federation) -> None:
    def unknown_agreement(cfg: dict[str, object]) -> None:
        federation.partner(cfg, "UZ:MIA")["rules"][0]["agreements"] = ["no-such-agreement"]  # type: ignore[arg-type]

    federation.mutate = unknown_agreement
    path = federation.write_config()
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path.name}:" in result.output
    assert "no-such-agreement" in result.output


def test_tokens_new_prints_a_token_and_its_hash() -> None:
    result = runner.invoke(app, ["tokens", "new", "--name", "auditor-2", "--role", "auditor"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    token = lines[0].rsplit(" ", 1)[1]
    assert hash_token(token) in lines[1]


def test_schemas_check_passes_on_the_published_schemas() -> None:
    result = runner.invoke(app, ["schemas", "check", str(Path(__file__).parents[2] / "schemas")])
    assert result.exit_code == 0, result.output


def receive(client: TestClient, federation: Federation, count: int) -> None:
    """Post `count` messages from UZ that the node accepts."""
    for _ in range(count):
        env = envelope_for(federation.uz, iat=int(client.app.state.node.clock()))  # type: ignore[attr-defined]
        resp = client.post(
            "/v1/messages",
            content=federation.uz.sign(env),
            headers={"Content-Type": "application/jose"},
        )
        assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("tamper", [False, True])
def test_audit_export_then_verify_detects_tampering(
    federation: Federation, tmp_path: Path, tamper: bool
) -> None:
    path = federation.write_config()
    with TestClient(create_app(load_config(path))) as client:
        receive(client, federation, 3)
        note = client.get(
            "/v1/audit/checkpoint", headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"}
        ).text
        vkey = client.get("/.well-known/migex-audit-key").text.strip()
    exported = runner.invoke(app, ["audit", "export", "--config", str(path)])
    assert exported.exit_code == 0, exported.output
    lines = exported.stdout.splitlines()
    if tamper:
        assert '"party":"UZ:MIA"' in lines[1]
        lines[1] = lines[1].replace('"party":"UZ:MIA"', '"party":"TJ:MIA"')
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "cp.txt").write_text(note)
    result = runner.invoke(
        app,
        [
            "audit",
            "verify",
            "--export",
            str(tmp_path / "log.jsonl"),
            "--checkpoint",
            str(tmp_path / "cp.txt"),
            "--key",
            vkey,
        ],
    )
    if tamper:
        assert result.exit_code == 1
        assert "FAILED" in result.output
    else:
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("ok:")


def test_audit_key_matches_the_published_key(federation: Federation) -> None:
    path = federation.write_config()
    result = runner.invoke(app, ["audit", "key", "--config", str(path)])
    assert result.exit_code == 0, result.output
    with TestClient(create_app(load_config(path))) as client:
        assert client.get("/.well-known/migex-audit-key").text.strip() == result.stdout.strip()


def test_send_signs_a_draft_that_the_node_accepts_and_verifies_the_receipt(
    client: TestClient, federation: Federation, tmp_path: Path
) -> None:
    from service.sending import post_signed, read_draft, sign_draft
    from tests.support.nodes import NOW, example_body

    path = tmp_path / "draft.json"
    path.write_text(json.dumps(example_body("citizenship.verification-request")))
    draft = read_draft(
        path,
        to="KZ:MIA",
        msg_type="citizenship.verification-request",
        agreement="kz-uz-2019",
        purpose="identity-verification",
        reply_to=None,
    )
    env, token = sign_draft(draft, federation.uz.key, now=float(NOW))
    assert env.iss == "UZ:MIA"
    status, result = post_signed("http://testserver", token, transport=client._transport)
    assert status == 201
    assert result["receipt"]["reply_to"] == env.id
    assert result["receipt_signature"] == "signature verified against the node's published key"


def test_send_refuses_a_draft_without_its_type(tmp_path: Path) -> None:
    from service.sending import read_draft

    path = tmp_path / "draft.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="missing type"):
        read_draft(path, to="KZ:MIA", msg_type=None, agreement="a", purpose="p", reply_to=None)


def test_send_through_a_node_holds_the_body_to_the_configured_limits(
    federation: Federation, tmp_path: Path
) -> None:
    from tests.support.nodes import example_body

    federation.overrides["limits"] = {"max_json_depth": 4}
    config = federation.write_config()
    draft = tmp_path / "draft.json"
    body = example_body("statistics.migration-flows")
    body["nested"] = {"a": {"b": {"c": {"d": {"e": {}}}}}}  # deeper than 4, not than 32
    draft.write_text(json.dumps(body))
    result = runner.invoke(
        app,
        [
            "send",
            "--config",
            str(config),
            "--file",
            str(draft),
            "--to",
            "UZ:MIA",
            "--type",
            "statistics.migration-flows",
            "--agreement",
            "kz-uz-2019",
            "--purpose",
            "statistics",
            "--wait",
            "0",
        ],
    )
    assert result.exit_code == 1, result.output
    refused = json.loads(result.output[result.output.index("{") :])
    assert refused["refused"]["code"] == "schema"
    assert "deeper than 4 levels" in refused["refused"]["detail"]


def _tamper(url: str, how: str) -> None:
    engines = create_engines(url)
    try:
        with engines.writer.begin() as conn:
            m = messages.c
            inbound = conn.execute(
                select(m.pk, m.jws).where(m.direction == "in").order_by(m.pk).limit(1)
            ).one()
            if how == "bytes":
                conn.execute(
                    update(messages).where(m.pk == inbound.pk).values(jws=inbound.jws + b"x")
                )
            elif how == "bytes-and-digest":
                forged = bytes(inbound.jws) + b"x"
                conn.execute(
                    update(messages)
                    .where(m.pk == inbound.pk)
                    .values(jws=forged, digest=message_digest(forged))
                )
            elif how == "deleted":
                # As one who deletes a message would: with the rows that refer to it.
                for table in messages.metadata.sorted_tables:
                    for fk in table.foreign_keys:
                        if fk.column is m.pk and table is not messages:
                            conn.execute(delete(table).where(fk.parent == inbound.pk))
                conn.execute(delete(messages).where(m.pk == inbound.pk))
            elif how == "copy":
                v = signed_versions.c
                copy = conn.execute(select(v.message_pk, v.version, v.jws)).one()
                conn.execute(
                    update(signed_versions)
                    .where(v.message_pk == copy.message_pk, v.version == copy.version)
                    .values(jws=bytes(copy.jws) + b"x")
                )
    finally:
        engines.dispose()


@pytest.mark.parametrize(
    ("tamper", "finding"),
    [
        (None, None),
        ("bytes", "its stored bytes do not hash to its digest"),
        ("bytes-and-digest", "its digest is not in the log"),
        ("deleted", "not stored"),
        ("copy", "signed copy 1 does not hash to its recorded digest"),
    ],
)
def test_audit_messages_checks_the_stored_messages_against_the_log(
    federation: Federation, tmp_path: Path, tamper: str | None, finding: str | None
) -> None:
    path = federation.write_config()
    with TestClient(create_app(load_config(path), run_delivery=False)) as client:
        receive(client, federation, 2)
        queued = client.post(
            "/v1/outbox",
            headers={"Authorization": f"Bearer {CLIENT_TOKEN}"},
            json=outbox_statistics(),
        )
        assert queued.status_code == 202, queued.text
    exported = runner.invoke(app, ["audit", "export", "--config", str(path)])
    assert exported.exit_code == 0, exported.output
    (tmp_path / "log.jsonl").write_bytes(exported.stdout_bytes)
    if tamper is not None:
        _tamper(federation.database_url, tamper)
    result = runner.invoke(
        app, ["audit", "messages", "--config", str(path), "--export", str(tmp_path / "log.jsonl")]
    )
    if finding is None:
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("ok: 3 messages (0 with purged bytes")
        assert "1 signed copies and 0 attachments agree with the log" in result.stdout
    else:
        assert result.exit_code == 1
        assert finding in result.output
        assert "FAILED: 1 findings" in result.output


EVERY_INTERFACE = "0.0.0.0"  # noqa: S104  (what the container image sets)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({}, [], ("127.0.0.1", 8000)),
        (
            {"MIGEX_LISTEN_HOST": EVERY_INTERFACE, "MIGEX_LISTEN_PORT": "8100"},
            [],
            (EVERY_INTERFACE, 8100),
        ),
        (
            {"MIGEX_LISTEN_HOST": EVERY_INTERFACE},
            ["--host", "::1", "--port", "8200"],
            ("::1", 8200),
        ),
    ],
)
def test_serve_listens_where_the_environment_says_unless_the_options_say_otherwise(
    federation: Federation,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    expected: tuple[str, int],
) -> None:
    """The container image sets MIGEX_LISTEN_HOST/PORT; the file's `listen` (127.0.0.1:8000
    when it names none) applies only without them, and --host/--port win over both."""
    bound: list[tuple[str, int]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: bound.append((kw["host"], kw["port"])))
    monkeypatch.setenv("MIGEX_CONFIG", "unused")  # serve sets it for the app; restored after
    for name in ("MIGEX_LISTEN_HOST", "MIGEX_LISTEN_PORT"):
        monkeypatch.delenv(name, raising=False)
    config = federation.write_config()
    result = runner.invoke(app, ["serve", "--config", str(config), *args], env=env)
    assert result.exit_code == 0, result.output
    assert bound == [expected]
