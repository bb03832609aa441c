"""docker/postgres/init.sh: the role and the four node databases, never without a password."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.conftest import PG_INIT


@pytest.fixture
def fake_psql(tmp_path: Path) -> Path:
    """A `psql` that records its standard input instead of connecting anywhere."""
    script = tmp_path / "psql"
    script.write_text(f'#!/bin/sh\ncat > "{tmp_path}/psql-input"\n')
    script.chmod(0o755)
    return tmp_path


def run_init(bin_dir: Path, password: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "POSTGRES_USER": "postgres",
        "MIGEX_DB_PASSWORD": password,
    }
    return subprocess.run(
        ["bash", str(PG_INIT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_postgres_init_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(PG_INIT)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_postgres_init_refuses_an_empty_password(fake_psql: Path) -> None:
    result = run_init(fake_psql, "")
    assert (result.returncode, (fake_psql / "psql-input").exists()) == (1, False)


def test_postgres_init_keeps_the_password_off_the_sql_text(fake_psql: Path) -> None:
    result = run_init(fake_psql, "s3cret-value")
    assert result.returncode == 0, result.stderr
    assert "s3cret-value" not in (fake_psql / "psql-input").read_text("utf-8")


def test_postgres_init_creates_the_migex_login_role(fake_psql: Path) -> None:
    run_init(fake_psql, "s3cret-value")
    sql = (fake_psql / "psql-input").read_text("utf-8")
    assert "CREATE ROLE migex LOGIN PASSWORD :'migex_password';" in sql
