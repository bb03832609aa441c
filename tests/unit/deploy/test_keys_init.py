"""docker/keys-init.sh: one Ed25519 key per node on first start, kept on every later start."""

from __future__ import annotations

import base64
import stat
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from tests.unit.deploy.conftest import KEYS_INIT, NODES, KeyDirs, RunKeysInit

pytestmark = pytest.mark.slow


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_keys_init_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(KEYS_INIT)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_first_run_succeeds(run_keys_init: RunKeysInit) -> None:
    result = run_keys_init()
    assert result.returncode == 0, result.stderr


def test_first_run_creates_one_private_key_per_node_with_mode_0600(generated_keys: KeyDirs) -> None:
    modes = {n: stat.S_IMODE(generated_keys.key(n).stat().st_mode) for n in NODES}
    assert modes == dict.fromkeys(NODES, 0o600)


def test_each_node_secrets_directory_is_private(generated_keys: KeyDirs) -> None:
    modes = {n: stat.S_IMODE(generated_keys.key(n).parent.stat().st_mode) for n in NODES}
    assert modes == dict.fromkeys(NODES, 0o700)


def test_first_run_writes_one_public_jwk_per_node(generated_keys: KeyDirs) -> None:
    assert sorted(p.name for p in generated_keys.public_dir.iterdir()) == sorted(
        f"{n}.jwk.json" for n in NODES
    )


def test_public_jwks_are_world_readable(generated_keys: KeyDirs) -> None:
    modes = {
        stat.S_IMODE((generated_keys.public_dir / f"{n}.jwk.json").stat().st_mode) for n in NODES
    }
    assert modes == {0o644}


def test_jwk_key_ids_name_each_node_party(generated_keys: KeyDirs) -> None:
    assert {n: generated_keys.jwk(n)["kid"] for n in NODES} == {
        n: f"{party}#2026-01" for n, party in NODES.items()
    }


def test_key_label_comes_from_the_environment(
    run_keys_init: RunKeysInit, key_dirs: KeyDirs
) -> None:
    run_keys_init(MIGEX_KEY_LABEL="2027-03", MIGEX_NODES="kg")
    assert key_dirs.jwk("kg")["kid"] == "KG:SRS#2027-03"


def test_jwks_hold_no_private_key_member(generated_keys: KeyDirs) -> None:
    assert [n for n in NODES if "d" in generated_keys.jwk(n)] == []


@pytest.mark.parametrize("node", sorted(NODES))
def test_jwk_is_the_public_half_of_the_node_key(generated_keys: KeyDirs, node: str) -> None:
    private = load_pem_private_key(generated_keys.key(node).read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = generated_keys.jwk(node)
    assert (jwk["kty"], jwk["crv"], jwk["x"]) == ("OKP", "Ed25519", b64url(raw))


def test_second_run_keeps_every_existing_key(run_keys_init: RunKeysInit, key_dirs: KeyDirs) -> None:
    run_keys_init()
    before = {n: key_dirs.key(n).read_bytes() for n in NODES}
    second = run_keys_init()
    assert second.returncode == 0, second.stderr
    assert {n: key_dirs.key(n).read_bytes() for n in NODES} == before


def test_second_run_keeps_every_public_jwk(run_keys_init: RunKeysInit, key_dirs: KeyDirs) -> None:
    run_keys_init()
    before = {n: key_dirs.jwk(n) for n in NODES}
    run_keys_init()
    assert {n: key_dirs.jwk(n) for n in NODES} == before


def test_missing_jwk_is_derived_again_from_the_existing_key(
    run_keys_init: RunKeysInit, key_dirs: KeyDirs
) -> None:
    run_keys_init()
    original = key_dirs.jwk("uz")
    (key_dirs.public_dir / "uz.jwk.json").unlink()
    result = run_keys_init()
    assert result.returncode == 0, result.stderr
    assert key_dirs.jwk("uz") == original


def test_only_a_node_without_a_key_gets_a_new_one(
    run_keys_init: RunKeysInit, key_dirs: KeyDirs
) -> None:
    run_keys_init(MIGEX_NODES="kz")
    kept = key_dirs.key("kz").read_bytes()
    run_keys_init()
    assert (key_dirs.key("kz").read_bytes(), key_dirs.key("tj").is_file()) == (kept, True)


def test_unknown_node_is_refused_before_any_key_is_written(
    run_keys_init: RunKeysInit, key_dirs: KeyDirs
) -> None:
    result = run_keys_init(MIGEX_NODES="kz xx")
    assert (result.returncode, key_dirs.key("kz").exists()) == (2, False)
