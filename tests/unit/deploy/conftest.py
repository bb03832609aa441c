"""Fixtures for the deployment files: the compose model, the node configs, keys-init runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "tests" / "assets" / "compose-spec.json"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
KEYS_INIT = ROOT / "docker" / "keys-init.sh"
PG_INIT = ROOT / "docker" / "postgres" / "init.sh"
CONFIG_DIR = ROOT / "docker" / "config"
CONSTRAINTS = ROOT / "docker" / "constraints.txt"

# Compose service name -> party id of the node it runs.
NODES = {"kz": "KZ:MIA", "kg": "KG:SRS", "uz": "UZ:MIA", "tj": "TJ:MIA"}
HOST_PORTS = {"kz": 8001, "kg": 8002, "uz": 8003, "tj": 8004}


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    target: str
    read_only: bool


def mounts(service: dict[str, Any]) -> list[Mount]:
    """A service's volumes in long form, whichever syntax the compose file uses."""
    found: list[Mount] = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append(
                Mount(
                    entry["type"],
                    str(entry.get("source", "")),
                    entry["target"],
                    bool(entry.get("read_only", False)),
                )
            )
            continue
        parts = entry.split(":")
        source, target = parts[0], parts[1]
        options = parts[2].split(",") if len(parts) > 2 else []
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        found.append(Mount(kind, source, target, "ro" in options))
    return found


def mount_at(service: dict[str, Any], target: str) -> Mount:
    matches = [m for m in mounts(service) if m.target == target]
    assert len(matches) == 1, f"expected one mount at {target}, found {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def config_files() -> dict[str, Path]:
    """docker/config/<node>.yaml for each node; skips while the directory holds none."""
    if not sorted(CONFIG_DIR.glob("*.yaml")):
        pytest.skip("docker/config/*.yaml do not exist yet: the node configurations are missing")
    return {node: CONFIG_DIR / f"{node}.yaml" for node in NODES}


@pytest.fixture(scope="module")
def configs(config_files: dict[str, Path]) -> dict[str, Any]:
    return {node: yaml.safe_load(path.read_text("utf-8")) for node, path in config_files.items()}


def strings_in(value: Any) -> list[str]:
    """Every string value anywhere in a parsed YAML document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def migex_command() -> list[str]:
    """The `migex` CLI of this checkout, run by the interpreter running the tests."""
    return [sys.executable, "-c", "from service.cli import app; app()"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("MIGEX_CONFIG", None)
    return env


@pytest.fixture(scope="module")
def migex_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a `migex` executable that runs this checkout's CLI."""
    directory = tmp_path_factory.mktemp("bin")
    script = directory / "migex"
    script.write_text("#!/bin/sh\nexec " + shlex.join(migex_command()) + ' "$@"\n')
    script.chmod(0o755)
    return directory


@dataclass(frozen=True)
class KeyDirs:
    secrets_root: Path
    public_dir: Path

    def key(self, node: str) -> Path:
        return self.secrets_root / node / f"{node}_signing_key"

    def witness_key(self, node: str) -> Path:
        return self.secrets_root / node / f"{node}_witness_key"

    def kek(self, node: str) -> Path:
        return self.secrets_root / node / f"{node}_kek"

    def policy(self, node: str) -> Path:
        return self.public_dir / f"{node}.witness-policy"

    def jwk(self, node: str) -> dict[str, Any]:
        loaded = json.loads((self.public_dir / f"{node}.jwk.json").read_text("utf-8"))
        assert isinstance(loaded, dict)
        return loaded


RunKeysInit = Callable[..., subprocess.CompletedProcess[str]]


def keys_init_runner(migex_bin: Path, dirs: KeyDirs) -> RunKeysInit:
    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        env = cli_env(
            PATH=f"{migex_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            MIGEX_SECRETS_ROOT=str(dirs.secrets_root),
            MIGEX_PUBLIC_DIR=str(dirs.public_dir),
            MIGEX_PYTHON=sys.executable,
            **extra,
        )
        return subprocess.run(
            ["bash", str(KEYS_INIT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def key_dirs(tmp_path: Path) -> KeyDirs:
    return KeyDirs(tmp_path / "keys", tmp_path / "public")


@pytest.fixture
def run_keys_init(migex_bin: Path, key_dirs: KeyDirs) -> RunKeysInit:
    return keys_init_runner(migex_bin, key_dirs)


@pytest.fixture(scope="module")
def generated_keys(tmp_path_factory: pytest.TempPathFactory, migex_bin: Path) -> KeyDirs:
    """One keys-init run shared by the tests that only read its output."""
    base = tmp_path_factory.mktemp("keys-init")
    dirs = KeyDirs(base / "keys", base / "public")
    result = keys_init_runner(migex_bin, dirs)()
    assert result.returncode == 0, result.stderr
    return dirs


# Where the node configs read the public keys and witness policies inside the containers.
PUBLIC_IN_CONTAINER = "/etc/migex/public"


def config_reading_policy_from(config: Path, public_dir: Path, dest_dir: Path) -> Path:
    """A copy of `config` in `dest_dir` whose witness policy file is in `public_dir`.

    The policy's path is absolute (`/etc/migex/public/<node>.witness-policy`), and
    MIGEX_PUBLIC_KEYS_DIR moves only the pinned key files, so a check outside the
    container reads a copy in which that one line differs.
    """
    text = config.read_text("utf-8")
    line = f"policy_file: {PUBLIC_IN_CONTAINER}/{config.stem}.witness-policy\n"
    assert text.count(line) == 1, f"{config.name} reads no policy from {PUBLIC_IN_CONTAINER}"
    dest_dir.mkdir(parents=True, exist_ok=True)
    copy = dest_dir / config.name
    copy.write_text(text.replace(line, f"policy_file: {public_dir}/{config.stem}.witness-policy\n"))
    return copy


@pytest.fixture(scope="module")
def placed_configs(
    tmp_path_factory: pytest.TempPathFactory, generated_keys: KeyDirs
) -> dict[str, Path]:
    """docker/config/<node>.yaml reading its witness policy from `generated_keys`."""
    dest = tmp_path_factory.mktemp("configs")
    return {
        node: config_reading_policy_from(
            CONFIG_DIR / f"{node}.yaml", generated_keys.public_dir, dest
        )
        for node in NODES
    }
