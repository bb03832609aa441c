"""docker/keys-init.sh: a signing key and a witness key per node on first start, kept on
every later start; each node's witness policy, derived from the keys on every start."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from service.audit.checkpoint import log_origin
from service.audit.note import verifier_key
from service.witness.cosignature import CosignerKey
from service.witness.policy import parse_policy
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


def test_first_run_writes_one_public_jwk_and_one_witness_policy_per_node(
    generated_keys: KeyDirs,
) -> None:
    assert sorted(p.name for p in generated_keys.public_dir.iterdir()) == sorted(
        [f"{n}.jwk.json" for n in NODES] + [f"{n}.witness-policy" for n in NODES]
    )


def test_public_files_are_world_readable(generated_keys: KeyDirs) -> None:
    modes = {stat.S_IMODE(p.stat().st_mode) for p in generated_keys.public_dir.iterdir()}
    assert modes == {0o644}


def test_first_run_creates_one_witness_key_per_node_with_mode_0600(
    generated_keys: KeyDirs,
) -> None:
    modes = {n: stat.S_IMODE(generated_keys.witness_key(n).stat().st_mode) for n in NODES}
    assert modes == dict.fromkeys(NODES, 0o600)


def test_first_run_creates_one_kek_of_32_random_bytes_per_node_with_mode_0600(
    generated_keys: KeyDirs,
) -> None:
    keks = {n: generated_keys.kek(n) for n in NODES}
    assert {n: stat.S_IMODE(k.stat().st_mode) for n, k in keks.items()} == dict.fromkeys(
        NODES, 0o600
    )
    assert {len(k.read_bytes()) for k in keks.values()} == {32}
    assert len({k.read_bytes() for k in keks.values()}) == len(NODES)


def public_raw(path: Path) -> bytes:
    private = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_witness_keys_are_ed25519_keys_of_their_own(generated_keys: KeyDirs) -> None:
    raw = {public_raw(generated_keys.key(n)) for n in NODES} | {
        public_raw(generated_keys.witness_key(n)) for n in NODES
    }
    assert len(raw) == 2 * len(NODES)


@pytest.mark.parametrize("node", sorted(NODES))
def test_witness_policy_names_the_node_log_and_the_other_nodes_two_of_three(
    generated_keys: KeyDirs, node: str
) -> None:
    policy = parse_policy(generated_keys.policy(node).read_bytes())
    others = sorted(n for n in NODES if n != node)

    def loaded(path: Path) -> Ed25519PublicKey:
        private = load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        return private.public_key()

    log_key = verifier_key(log_origin(NODES[node]), loaded(generated_keys.key(node)))
    assert [log.vkey for log in policy.logs] == [log_key]
    assert {n: (w.key.vkey, w.url) for n, w in policy.witnesses.items()} == {
        n: (
            CosignerKey(f"migex/{NODES[n]}/witness", loaded(generated_keys.witness_key(n))).vkey,
            f"http://{n}:8000/v1/witness",
        )
        for n in others
    }
    group = policy.groups[policy.quorum]
    assert (group.threshold, sorted(group.members)) == (2, others)
    assert (policy.met_by(set(others[:1])), policy.met_by(set(others[:2]))) == (False, True)


def test_quorum_comes_from_the_environment(run_keys_init: RunKeysInit, key_dirs: KeyDirs) -> None:
    result = run_keys_init(MIGEX_WITNESS_QUORUM="3")
    assert result.returncode == 0, result.stderr
    policy = parse_policy(key_dirs.policy("kz").read_bytes())
    assert policy.groups[policy.quorum].threshold == 3


def test_a_node_with_too_few_others_for_the_quorum_gets_no_policy(
    run_keys_init: RunKeysInit, key_dirs: KeyDirs
) -> None:
    result = run_keys_init(MIGEX_NODES="kz kg")
    assert result.returncode == 0, result.stderr
    assert "kz: no witness policy: 1 other nodes, quorum 2" in result.stderr
    assert (key_dirs.policy("kz").exists(), key_dirs.witness_key("kz").is_file()) == (False, True)


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

    def kept() -> dict[str, tuple[bytes, ...]]:
        return {
            n: tuple(
                p.read_bytes() for p in (key_dirs.key(n), key_dirs.witness_key(n), key_dirs.kek(n))
            )
            for n in NODES
        }

    before = kept()
    second = run_keys_init()
    assert second.returncode == 0, second.stderr
    after = kept()
    assert after == before


def test_second_run_writes_the_same_policies(run_keys_init: RunKeysInit, key_dirs: KeyDirs) -> None:
    run_keys_init()
    before = {n: key_dirs.policy(n).read_text("utf-8") for n in NODES}
    (key_dirs.public_dir / "tj.witness-policy").unlink()
    second = run_keys_init()
    assert second.returncode == 0, second.stderr
    assert {n: key_dirs.policy(n).read_text("utf-8") for n in NODES} == before


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
