"""docker/config/*.yaml against the compose file, the database init script and keys-init."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.unit.deploy.conftest import (
    NODES,
    PG_INIT,
    ROOT,
    KeyDirs,
    cli_env,
    migex_command,
    mount_at,
    strings_in,
)

KID = re.compile(r"^[A-Z]{2}:[A-Z0-9][A-Z0-9-]{1,31}#.+$")


def urls(config: Any, *schemes: str) -> list[str]:
    return [s for s in strings_in(config) if urlsplit(s).scheme in schemes]


def created_databases() -> set[str]:
    return set(re.findall(r"CREATE DATABASE (\w+) OWNER migex", PG_INIT.read_text("utf-8")))


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_config_mounted_by_compose_exists_under_docker_config(
    services: dict[str, Any], config_files: dict[str, Path], node: str
) -> None:
    source = (ROOT / mount_at(services[node], "/etc/migex/node.yaml").source).resolve()
    assert (source, source.is_file()) == (config_files[node].resolve(), True)


@pytest.mark.parametrize("node", sorted(NODES))
def test_partner_endpoints_are_node_services_on_port_8000(
    configs: dict[str, Any], node: str
) -> None:
    endpoints = [urlsplit(u) for u in urls(configs[node], "http", "https")]
    assert endpoints, f"{node}.yaml names no partner endpoint"
    assert {(e.hostname, e.port) for e in endpoints} <= {(n, 8000) for n in NODES if n != node}


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_database_is_its_own_database_on_the_postgres_service(
    configs: dict[str, Any], node: str
) -> None:
    databases = [urlsplit(u) for u in urls(configs[node], "postgresql+psycopg", "postgresql")]
    assert [(d.hostname, d.username, d.path) for d in databases] == [
        ("postgres", "migex", f"/migex_{node}")
    ]


def test_init_script_creates_the_database_of_every_node() -> None:
    assert created_databases() == {f"migex_{node}" for node in NODES}


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_signing_key_is_read_from_its_own_secrets_volume(
    configs: dict[str, Any], node: str
) -> None:
    secrets = {s for s in strings_in(configs[node]) if s.startswith("/run/secrets/")}
    assert secrets == {f"/run/secrets/{node}_signing_key"}


@pytest.mark.parametrize("node", sorted(NODES))
def test_partner_public_keys_are_files_that_keys_init_writes(
    configs: dict[str, Any], node: str
) -> None:
    public = {s for s in strings_in(configs[node]) if s.startswith("/etc/migex/public/")}
    assert public, f"{node}.yaml pins no partner key file"
    assert public <= {f"/etc/migex/public/{n}.jwk.json" for n in NODES if n != node}


@pytest.mark.slow
@pytest.mark.parametrize("node", sorted(NODES))
def test_every_key_id_in_a_config_is_one_that_keys_init_generates(
    configs: dict[str, Any], generated_keys: KeyDirs, node: str
) -> None:
    generated = {generated_keys.jwk(n)["kid"] for n in NODES}
    kids = {s for s in strings_in(configs[node]) if KID.match(s)}
    assert kids, f"{node}.yaml names no key id"
    assert kids <= generated


@pytest.mark.slow
def test_config_check_without_key_files_accepts_every_node_config(
    config_files: dict[str, Path], generated_keys: KeyDirs
) -> None:
    # Partner keys are pinned from files; keys-init writes them, here into a temporary dir.
    result = subprocess.run(
        [*migex_command(), "config", "check", "--no-key-files", *map(str, config_files.values())],
        env=cli_env(MIGEX_PUBLIC_KEYS_DIR=str(generated_keys.public_dir)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("node", sorted(NODES))
def test_config_check_accepts_each_node_with_the_keys_keys_init_generates(
    config_files: dict[str, Path], generated_keys: KeyDirs, node: str
) -> None:
    result = subprocess.run(
        [*migex_command(), "config", "check", str(config_files[node])],
        env=cli_env(
            MIGEX_PUBLIC_KEYS_DIR=str(generated_keys.public_dir),
            MIGEX_SECRETS_DIR=str(generated_keys.key(node).parent),
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
