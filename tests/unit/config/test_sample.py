"""The sample configuration that `migex quickstart` writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service import cli
from service.config import load_config


def test_quickstart_writes_the_demo_partners_endpoint_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Path] = []
    monkeypatch.setattr(cli, "serve", lambda config, **_: served.append(config))
    result = CliRunner().invoke(
        cli.app,
        [
            "quickstart",
            "--dir",
            str(tmp_path / "qs"),
            "--port",
            "8123",
            "--partner-endpoint",
            "http://127.0.0.1:9123",
        ],
    )
    assert result.exit_code == 0, result.output
    cfg = load_config(served[0], env={})
    assert cfg.partners[0].endpoint == "http://127.0.0.1:9123"
    assert cfg.listen.port == 8123


def test_quickstart_expects_the_demo_partner_on_port_8001_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Path] = []
    monkeypatch.setattr(cli, "serve", lambda config, **_: served.append(config))
    result = CliRunner().invoke(cli.app, ["quickstart", "--dir", str(tmp_path / "qs")])
    assert result.exit_code == 0, result.output
    assert load_config(served[0], env={}).partners[0].endpoint == "http://127.0.0.1:8001"
