"""docker-compose.yml: valid Compose, four nodes wired to their database, keys and configs."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from tests.unit.deploy.conftest import (
    COMPOSE_SCHEMA,
    HOST_PORTS,
    NODES,
    PG_INIT,
    ROOT,
    mount_at,
    mounts,
)

KEY_MATERIAL = re.compile(r"(\.pem|\.key|_signing_key|secrets?)(/|$)", re.IGNORECASE)
IMAGE_USER = "10001:10001"


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text("utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_compose_runs_four_nodes_the_database_and_the_key_setup(services: dict[str, Any]) -> None:
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {*NODES, "postgres", "keys-init"}


def test_scale_out_profile_adds_only_a_second_kz_process(services: dict[str, Any]) -> None:
    profiled = {
        name: service["profiles"] for name, service in services.items() if "profiles" in service
    }
    assert profiled == {"kz-2": ["scale-out"]}


def test_second_kz_process_runs_kz_with_its_config_keys_and_database(
    services: dict[str, Any],
) -> None:
    kz, kz2 = services["kz"], services["kz-2"]
    assert mounts(kz2) == mounts(kz)
    assert (kz2["environment"], kz2["depends_on"], kz2["image"]) == (
        kz["environment"],
        kz["depends_on"],
        kz["image"],
    )
    assert kz2["networks"]["default"]["aliases"] == ["kz"]
    assert [(int(p["published"]), int(p["target"])) for p in kz2["ports"]] == [(8005, 8000)]


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_healthcheck_probes_readiness_on_port_8000(
    services: dict[str, Any], node: str
) -> None:
    check = services[node]["healthcheck"]
    assert not check.get("disable", False)
    assert "http://127.0.0.1:8000/v1/ready" in " ".join(check["test"])


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_waits_for_a_healthy_database_and_completed_key_setup(
    services: dict[str, Any], node: str
) -> None:
    conditions = {name: dep["condition"] for name, dep in services[node]["depends_on"].items()}
    assert conditions == {
        "postgres": "service_healthy",
        "keys-init": "service_completed_successfully",
    }


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_publishes_port_8000_on_its_own_host_port(services: dict[str, Any], node: str) -> None:
    published = {(int(p["published"]), int(p["target"])) for p in services[node].get("ports", [])}
    assert published == {(HOST_PORTS[node], 8000)}


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_mounts_its_own_config_read_only_as_node_yaml(
    services: dict[str, Any], node: str
) -> None:
    mount = mount_at(services[node], "/etc/migex/node.yaml")
    assert (mount.type, mount.source, mount.read_only) == (
        "bind",
        f"./docker/config/{node}.yaml",
        True,
    )


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_mounts_only_its_own_secrets_volume_read_only(
    services: dict[str, Any], node: str
) -> None:
    mount = mount_at(services[node], "/run/secrets")
    assert (mount.type, mount.source, mount.read_only) == ("volume", f"{node}-secrets", True)


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_mounts_the_shared_public_keys_read_only(services: dict[str, Any], node: str) -> None:
    mount = mount_at(services[node], "/etc/migex/public")
    assert (mount.type, mount.source, mount.read_only) == ("volume", "public-keys", True)


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_mounts_the_example_messages_read_only(services: dict[str, Any], node: str) -> None:
    mount = mount_at(services[node], "/etc/migex/examples")
    assert (mount.type, mount.source, mount.read_only) == ("bind", "./docker/examples", True)


def test_example_statistics_message_body_is_a_json_object() -> None:
    body = json.loads((ROOT / "docker" / "examples" / "statistics.json").read_text("utf-8"))
    assert isinstance(body, dict)


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_runs_with_a_read_only_root_filesystem_and_tmpfs_tmp(
    services: dict[str, Any], node: str
) -> None:
    service = services[node]
    assert (service.get("read_only"), service.get("tmpfs")) == (True, ["/tmp"])


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_restarts_unless_stopped(services: dict[str, Any], node: str) -> None:
    assert services[node]["restart"] == "unless-stopped"


@pytest.mark.parametrize("service", [*sorted(NODES), "keys-init"])
def test_migex_containers_run_as_the_image_user(services: dict[str, Any], service: str) -> None:
    assert services[service]["user"] == IMAGE_USER


@pytest.mark.parametrize("service", [*sorted(NODES), "kz-2", "keys-init"])
def test_migex_containers_share_one_image(services: dict[str, Any], service: str) -> None:
    assert services[service]["image"] == services["keys-init"]["image"]


def test_only_keys_init_builds_the_image_so_it_is_built_once(services: dict[str, Any]) -> None:
    builds = {name: service["build"] for name, service in services.items() if "build" in service}
    assert builds == {"keys-init": {"context": ".", "dockerfile": "docker/Dockerfile"}}


@pytest.mark.parametrize("service", [*sorted(NODES), "kz-2", "keys-init"])
def test_migex_containers_drop_every_capability_and_privilege_gain(
    services: dict[str, Any], service: str
) -> None:
    spec = services[service]
    assert (spec["cap_drop"], spec["security_opt"], spec["read_only"]) == (
        ["ALL"],
        ["no-new-privileges:true"],
        True,
    )
    assert "cap_add" not in spec


@pytest.mark.parametrize("service", [*sorted(NODES), "kz-2", "keys-init", "postgres"])
def test_every_container_has_resource_limits_and_rotated_logs(
    services: dict[str, Any], service: str
) -> None:
    spec = services[service]
    assert set(spec["deploy"]["resources"]["limits"]) == {"cpus", "memory", "pids"}
    assert spec["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "5"},
    }


def test_postgres_keeps_only_the_capabilities_its_entrypoint_needs(
    services: dict[str, Any],
) -> None:
    spec = services["postgres"]
    assert (spec["cap_drop"], sorted(spec["cap_add"]), spec["security_opt"]) == (
        ["ALL"],
        ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
        ["no-new-privileges:true"],
    )


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_runs_the_image_default_command(services: dict[str, Any], node: str) -> None:
    assert "command" not in services[node]


def test_no_service_bind_mounts_key_material_from_the_repository(
    services: dict[str, Any],
) -> None:
    offending = [
        (name, m.source)
        for name, service in services.items()
        for m in mounts(service)
        if m.type == "bind" and KEY_MATERIAL.search(m.source)
    ]
    assert offending == []


def test_no_compose_secret_is_read_from_a_file(compose: dict[str, Any]) -> None:
    secrets = compose.get("secrets", {}) or {}
    assert [name for name, spec in secrets.items() if "file" in spec] == []


@pytest.mark.parametrize("node", sorted(NODES))
def test_keys_init_writes_each_node_key_into_that_node_secrets_volume(
    services: dict[str, Any], node: str
) -> None:
    keys_init = services["keys-init"]
    root = keys_init["environment"]["MIGEX_SECRETS_ROOT"]
    mount = mount_at(keys_init, f"{root}/{node}")
    assert (mount.type, mount.source, mount.read_only) == ("volume", f"{node}-secrets", False)


def test_keys_init_writes_public_keys_into_the_shared_volume(services: dict[str, Any]) -> None:
    keys_init = services["keys-init"]
    mount = mount_at(keys_init, keys_init["environment"]["MIGEX_PUBLIC_DIR"])
    assert (mount.type, mount.source, mount.read_only) == ("volume", "public-keys", False)


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_reads_the_witness_policy_keys_init_writes_from_the_public_volume(
    services: dict[str, Any], configs: dict[str, Any], node: str
) -> None:
    keys_init = services["keys-init"]
    public = keys_init["environment"]["MIGEX_PUBLIC_DIR"]
    policy = configs[node]["witnessed_by"]["policy_file"]
    assert policy == f"{public}/{node}.witness-policy"
    mount = mount_at(services[node], public)
    assert (mount.type, mount.source, mount.read_only) == ("volume", "public-keys", True)


def test_keys_init_asks_two_witnesses_of_three(services: dict[str, Any]) -> None:
    assert services["keys-init"]["environment"]["MIGEX_WITNESS_QUORUM"] == "2"


def test_keys_init_runs_the_key_script_once_without_restarting(services: dict[str, Any]) -> None:
    keys_init = services["keys-init"]
    assert (keys_init["entrypoint"], keys_init["restart"]) == (
        ["/usr/local/bin/migex-keys-init"],
        "no",
    )


def test_every_named_volume_in_use_is_declared(compose: dict[str, Any]) -> None:
    used = {
        m.source
        for service in compose["services"].values()
        for m in mounts(service)
        if m.type == "volume"
    }
    assert used == set(compose["volumes"])


def test_postgres_keeps_its_data_in_a_named_volume(services: dict[str, Any]) -> None:
    mount = mount_at(services["postgres"], "/var/lib/postgresql/data")
    assert (mount.type, mount.source) == ("volume", "pgdata")


def test_postgres_healthcheck_uses_pg_isready(services: dict[str, Any]) -> None:
    test = services["postgres"]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(test[1:])


def test_postgres_image_is_pinned_to_a_major_version(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"postgres:\d+(\.\d+)?-\w+", services["postgres"]["image"])


def test_postgres_runs_the_init_script_from_the_repository(services: dict[str, Any]) -> None:
    initdb = [
        m
        for m in mounts(services["postgres"])
        if m.target.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert [(m.type, (ROOT / m.source).resolve(), m.read_only) for m in initdb] == [
        ("bind", PG_INIT.resolve(), True)
    ]


def test_database_password_reaching_postgres_and_nodes_is_the_same_variable(
    services: dict[str, Any],
) -> None:
    expected = services["postgres"]["environment"]["MIGEX_DB_PASSWORD"]
    assert {services[node]["environment"]["PGPASSWORD"] for node in NODES} == {expected}
