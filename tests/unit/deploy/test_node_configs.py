"""docker/config/*.yaml against the compose file, the database init script and keys-init."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.witness.policy import parse_policy
from tests.unit.deploy.conftest import (
    NODES,
    PG_INIT,
    PUBLIC_IN_CONTAINER,
    ROOT,
    KeyDirs,
    cli_env,
    migex_command,
    mount_at,
    strings_in,
)

KID = re.compile(r"^[A-Z]{2}:[A-Z0-9][A-Z0-9-]{1,31}#.+$")


def migex(*args: str, **env: str) -> str:
    """Run this checkout's `migex` with `env` added; fail with its output; its stdout."""
    result = subprocess.run(
        [*migex_command(), *args],
        env=cli_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def with_keys(generated: KeyDirs, node: str) -> dict[str, str]:
    """The environment that points a node's config at the files keys-init wrote."""
    return {
        "MIGEX_PUBLIC_KEYS_DIR": str(generated.public_dir),
        "MIGEX_SECRETS_DIR": str(generated.key(node).parent),
    }


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
def test_node_keys_are_read_from_its_own_secrets_volume(configs: dict[str, Any], node: str) -> None:
    secrets = {s for s in strings_in(configs[node]) if s.startswith("/run/secrets/")}
    assert secrets == {
        f"/run/secrets/{node}_signing_key",
        f"/run/secrets/{node}_witness_key",
        f"/run/secrets/{node}_kek",
    }


@pytest.mark.parametrize("node", sorted(NODES))
def test_partner_public_keys_are_files_that_keys_init_writes(
    configs: dict[str, Any], node: str
) -> None:
    public = {s for s in strings_in(configs[node]) if s.startswith(f"{PUBLIC_IN_CONTAINER}/")}
    assert public, f"{node}.yaml pins no partner key file"
    assert public <= {f"{PUBLIC_IN_CONTAINER}/{n}.jwk.json" for n in NODES if n != node} | {
        f"{PUBLIC_IN_CONTAINER}/{node}.witness-policy"
    }


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_has_a_witness_key_of_its_own_that_it_does_not_publish(
    configs: dict[str, Any], node: str
) -> None:
    section = configs[node]["node"]
    kid = f"{NODES[node]}#witness-2026-01"
    files = {k["kid"]: k["file"] for k in section["signing_keys"]}
    assert (section["witness_kid"], files.get(kid)) == (kid, f"/run/secrets/{node}_witness_key")
    assert kid not in (section["active_kid"], section["audit_kid"])
    assert section["published_kids"] == [section["active_kid"]]


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_log_is_witnessed_by_the_policy_keys_init_writes(
    configs: dict[str, Any], node: str
) -> None:
    assert configs[node]["witnessed_by"] == {
        "policy_file": f"{PUBLIC_IN_CONTAINER}/{node}.witness-policy"
    }


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_witnesses_the_logs_of_the_other_three(configs: dict[str, Any], node: str) -> None:
    # A node witnesses its partners' logs (and those of `witness.logs`, unused here):
    # every node is a partner of every other, so each is a witness in the others' policies.
    assert "witness" not in configs[node]
    partners = sorted(p["party"] for p in configs[node]["partners"])
    assert partners == sorted(p for n, p in NODES.items() if n != node)


def test_only_kz_exchanges_messages_with_the_other_nodes(configs: dict[str, Any]) -> None:
    with_rules = {
        (NODES[node], partner["party"])
        for node, config in configs.items()
        for partner in config["partners"]
        if partner.get("rules")
    }
    assert with_rules == {("KZ:MIA", p) for p in NODES.values() if p != "KZ:MIA"} | {
        (p, "KZ:MIA") for p in NODES.values() if p != "KZ:MIA"
    }


@pytest.mark.slow
@pytest.mark.parametrize("node", sorted(NODES))
def test_every_key_id_in_a_config_is_one_that_keys_init_generates(
    configs: dict[str, Any], generated_keys: KeyDirs, node: str
) -> None:
    generated = {generated_keys.jwk(n)["kid"] for n in NODES} | {
        f"{NODES[n]}#witness-2026-01" for n in NODES if generated_keys.witness_key(n).is_file()
    }
    kids = {s for s in strings_in(configs[node]) if KID.match(s)}
    assert kids, f"{node}.yaml names no key id"
    assert kids <= generated


@pytest.mark.slow
def test_config_check_without_key_files_accepts_every_node_config(
    placed_configs: dict[str, Path], generated_keys: KeyDirs
) -> None:
    # Partner keys and witness policies are files; keys-init writes them, here into a
    # temporary dir.
    migex(
        "config", "check", "--no-key-files", *map(str, placed_configs.values()),
        MIGEX_PUBLIC_KEYS_DIR=str(generated_keys.public_dir),
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("node", sorted(NODES))
def test_config_check_accepts_each_node_with_the_keys_keys_init_generates(
    placed_configs: dict[str, Path], generated_keys: KeyDirs, node: str
) -> None:
    migex("config", "check", str(placed_configs[node]), **with_keys(generated_keys, node))


@pytest.mark.slow
@pytest.mark.parametrize("node", sorted(NODES))
def test_witness_key_the_node_prints_is_the_one_in_the_other_policies(
    placed_configs: dict[str, Path], generated_keys: KeyDirs, node: str
) -> None:
    printed = migex(
        "audit", "witness-key", "--config", str(placed_configs[node]),
        **with_keys(generated_keys, node),
    ).strip()  # fmt: skip
    in_policies = {
        other: parse_policy(generated_keys.policy(other).read_bytes()).witnesses[node].key.vkey
        for other in NODES
        if other != node
    }
    assert in_policies == dict.fromkeys(in_policies, printed)
