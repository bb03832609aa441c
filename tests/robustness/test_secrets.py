"""Secrets: bearer tokens only as hashes, private keys never in a log or an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import tokens
from service.api.tokens import hash_token
from service.config import ConfigError, load_config
from tests.robustness.federations import federation_in
from tests.robustness.keyforms import leaked
from tests.support.nodes import (
    AUDITOR_TOKEN,
    CLIENT_TOKEN,
    OPERATOR_TOKEN,
    PRIVACY_TOKEN,
    Federation,
)

ALL_TOKENS = (AUDITOR_TOKEN, OPERATOR_TOKEN, CLIENT_TOKEN, PRIVACY_TOKEN)
MIGEX = str(Path(sys.executable).with_name("migex"))


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Secrets do not depend on the database: SQLite only."""
    return sqlite_url


def test_configuration_holds_token_hashes_only(federation: Federation) -> None:
    text = federation.write_config().read_text()
    assert [t for t in ALL_TOKENS if t in text] == []
    assert all(hash_token(t) in text for t in ALL_TOKENS)


def test_a_token_hash_is_not_a_credential(client: TestClient) -> None:
    resp = client.get(
        "/v1/audit/checkpoint", headers={"Authorization": f"Bearer {hash_token(AUDITOR_TOKEN)}"}
    )
    assert (resp.status_code, resp.json()["code"]) == (401, "unauthorized")


def test_api_request_compares_the_token_with_every_entry(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[bytes] = []
    real = tokens.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    resp = client.get("/v1/inbox", headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"})
    # The auditor entry matches first; the other entries are still compared.
    assert (resp.status_code, len(compared)) == (403, len(ALL_TOKENS))


def test_key_file_readable_by_others_is_refused_naming_the_path(tmp_path: Path) -> None:
    federation = federation_in(tmp_path)
    federation.kz.key_file.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        load_config(federation.write_config())
    message = str(refused.value)
    assert str(federation.kz.key_file) in message
    assert "0644" in message
    assert leaked(message, federation) == []


def test_garbled_key_file_error_does_not_quote_the_key(tmp_path: Path) -> None:
    federation = federation_in(tmp_path)
    pem = federation.kz.key_file.read_text()
    federation.kz.key_file.write_text(pem.replace("\n", "\n#", 2))
    with pytest.raises(ConfigError) as refused:
        load_config(federation.write_config())
    assert str(federation.kz.key_file) in str(refused.value)
    assert leaked(str(refused.value), federation) == []


@pytest.mark.slow
def test_serve_refuses_a_key_file_readable_by_others(tmp_path: Path) -> None:
    federation = federation_in(tmp_path)
    federation.kz.key_file.chmod(0o644)
    config = federation.write_config()
    result = subprocess.run(
        [MIGEX, "serve", "--config", str(config), "--port", "9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert str(federation.kz.key_file) in output
    assert leaked(output, federation) == []
