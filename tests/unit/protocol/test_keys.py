"""Public keys as JWKs, signing keys and their files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.protocol.b64 import b64url_encode
from service.protocol.keys import (
    KeyFileError,
    PublicKey,
    SigningKey,
    algs_for,
    generate_private_key,
    jwks,
    load_signing_key,
    private_key_pem,
    public_key_from_jwk,
    write_private_key,
)

# RFC 8037 appendix A.2 public key.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
# The P-256 field prime: a coordinate this large is not a field element.
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1


def _p256_jwk(**changes: Any) -> dict[str, Any]:
    numbers = ec.derive_private_key(7, ec.SECP256R1()).public_key().public_numbers()
    jwk: dict[str, Any] = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        "kid": "UZ:MIA#1",
    }
    jwk.update(changes)
    return jwk


def _okp_jwk(**changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "KZ:MIA#1"}
    jwk.update(changes)
    return jwk


def test_ed25519_jwk_has_exactly_the_public_members(ed25519_key: SigningKey) -> None:
    jwk = ed25519_key.public().jwk()
    assert list(jwk) == ["kty", "crv", "x", "kid", "use"]
    assert (jwk["kty"], jwk["crv"], jwk["kid"], jwk["use"]) == (
        "OKP",
        "Ed25519",
        "KZ:MIA#2026-01",
        "sig",
    )


def test_p256_jwk_has_exactly_the_public_members(p256_key: SigningKey) -> None:
    jwk = p256_key.public().jwk()
    assert list(jwk) == ["kty", "crv", "x", "y", "kid", "use"]
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")


def test_public_key_from_jwk_reads_rfc8037_public_key() -> None:
    key = public_key_from_jwk(_okp_jwk())
    assert key.kind == "ed25519"
    assert key.jwk()["x"] == RFC8037_X


@pytest.mark.parametrize("fixture", ["ed25519_key", "p256_key"])
def test_public_key_round_trips_through_jwk(fixture: str, request: pytest.FixtureRequest) -> None:
    public = request.getfixturevalue(fixture).public()
    assert public_key_from_jwk(public.jwk()) == public


def test_public_key_from_jwk_takes_the_kid_argument_when_jwk_has_none() -> None:
    jwk = _okp_jwk()
    del jwk["kid"]
    assert public_key_from_jwk(jwk, kid="KZ:MIA#2").kid == "KZ:MIA#2"


def test_public_key_from_jwk_refuses_a_kid_that_differs_from_the_argument() -> None:
    with pytest.raises(ValueError, match="differs"):
        public_key_from_jwk(_okp_jwk(), kid="KZ:MIA#2")


def test_public_key_from_jwk_refuses_a_jwk_without_any_kid() -> None:
    jwk = _okp_jwk()
    del jwk["kid"]
    with pytest.raises(ValueError, match="no kid"):
        public_key_from_jwk(jwk)


@pytest.mark.parametrize("member", ["d", "p", "k"])
def test_public_key_from_jwk_refuses_private_members(member: str) -> None:
    with pytest.raises(ValueError, match="private key material"):
        public_key_from_jwk(_okp_jwk(**{member: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}))


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        (_okp_jwk(kty="RSA"), "kty"),
        (_okp_jwk(kty="oct"), "kty"),
        (_okp_jwk(crv="X25519"), "Ed25519"),
        (_okp_jwk(crv="Ed448"), "Ed25519"),
        (_p256_jwk(crv="P-384"), "P-256"),
        (_p256_jwk(crv="secp256k1"), "P-256"),
        (_okp_jwk(x=RFC8037_X + "="), "base64url"),
        (_okp_jwk(x=RFC8037_X.replace("_", "/")), "base64url"),
        (_okp_jwk(x=b64url_encode(bytes(31))), "32 bytes"),
        (_okp_jwk(x=42), "string"),
        (_okp_jwk(y=RFC8037_X), "'y'"),
        (_okp_jwk(use="enc"), "use"),
        (_okp_jwk(alg="ES256"), "alg"),
        (_p256_jwk(alg="EdDSA"), "alg"),
        (_okp_jwk(key_ops=["encrypt"]), "key_ops"),
        (_p256_jwk(y=b64url_encode((1).to_bytes(32, "big"))), "curve"),
        (_p256_jwk(x=b64url_encode(P256_PRIME.to_bytes(32, "big"))), "curve"),
        (_p256_jwk(kid=""), "kid"),
        (_p256_jwk(kid="K" * 129), "kid"),
    ],
)
def test_public_key_from_jwk_refuses_bad_jwks(jwk: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        public_key_from_jwk(jwk)


def test_public_key_from_jwk_refuses_a_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        public_key_from_jwk(["kty", "OKP"])  # type: ignore[arg-type]


def test_public_key_refuses_a_p384_key() -> None:
    with pytest.raises(ValueError, match="P-256"):
        PublicKey("X:Y#1", ec.generate_private_key(ec.SECP384R1()).public_key())


def test_signing_key_refuses_an_rsa_key() -> None:
    with pytest.raises(ValueError, match="Ed25519 and P-256"):
        SigningKey("X:Y#1", rsa.generate_private_key(65537, 2048))  # type: ignore[arg-type]


def test_signing_key_alg_is_ed25519_for_ed25519_keys(ed25519_key: SigningKey) -> None:
    assert ed25519_key.alg == "Ed25519"


def test_signing_key_alg_is_es256_for_p256_keys(p256_key: SigningKey) -> None:
    assert p256_key.alg == "ES256"


def test_signing_key_repr_hides_the_private_key(ed25519_key: SigningKey) -> None:
    assert "private" not in repr(ed25519_key)


def test_algs_for_ed25519_allows_both_eddsa_names(ed25519_key: SigningKey) -> None:
    assert algs_for(ed25519_key.public()) == frozenset({"Ed25519", "EdDSA"})


def test_algs_for_p256_allows_only_es256(p256_key: SigningKey) -> None:
    assert algs_for(p256_key.public()) == frozenset({"ES256"})


def test_jwks_lists_each_public_key(ed25519_key: SigningKey, p256_key: SigningKey) -> None:
    document = jwks([ed25519_key.public(), p256_key.public()])
    assert [k["kid"] for k in document["keys"]] == ["KZ:MIA#2026-01", "UZ:MIA#2026-01"]


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_written_key_file_has_mode_0600_and_loads_back(tmp_path: Path, kind: Any) -> None:
    private = generate_private_key(kind)
    path = tmp_path / "node.pem"
    write_private_key(path, private)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_signing_key(path, "KZ:MIA#1")
    assert loaded.public().jwk() == SigningKey("KZ:MIA#1", private).public().jwk()


def test_write_private_key_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.pem"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_private_key(path, generate_private_key("ed25519"))
    assert path.read_bytes() == b"keep me"


def test_write_private_key_refusal_is_also_a_key_file_error(tmp_path: Path) -> None:
    path = tmp_path / "node.pem"
    path.touch()
    with pytest.raises(KeyFileError):
        write_private_key(path, generate_private_key("ed25519"))


def _key_file(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_load_signing_key_refuses_a_group_readable_file_without_leaking_the_key(
    tmp_path: Path,
) -> None:
    pem = private_key_pem(generate_private_key("ed25519"))
    path = _key_file(tmp_path, pem, 0o644)
    with pytest.raises(KeyFileError) as caught:
        load_signing_key(path, "KZ:MIA#1")
    text = str(caught.value)
    assert str(path) in text
    assert "0644" in text
    body = pem.splitlines()[1].decode()
    assert body not in text
    assert "BEGIN" not in text


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602])
def test_load_signing_key_refuses_any_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path, private_key_pem(generate_private_key("p256")), mode)
    with pytest.raises(KeyFileError, match="group and others"):
        load_signing_key(path, "KZ:MIA#1")


def test_load_signing_key_accepts_0400(tmp_path: Path) -> None:
    path = _key_file(tmp_path, private_key_pem(generate_private_key("ed25519")), 0o400)
    assert load_signing_key(path, "KZ:MIA#1").alg == "Ed25519"


def test_load_signing_key_skips_the_mode_check_when_asked(tmp_path: Path) -> None:
    path = _key_file(tmp_path, private_key_pem(generate_private_key("ed25519")), 0o644)
    assert load_signing_key(path, "KZ:MIA#1", check_permissions=False).kid == "KZ:MIA#1"


def test_load_signing_key_refuses_a_p384_key(tmp_path: Path) -> None:
    path = _key_file(tmp_path, private_key_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(KeyFileError, match="not supported"):
        load_signing_key(path, "KZ:MIA#1")


def test_load_signing_key_refuses_an_encrypted_key(tmp_path: Path) -> None:
    pem = generate_private_key("ed25519").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(KeyFileError, match="encrypted"):
        load_signing_key(_key_file(tmp_path, pem), "KZ:MIA#1")


def test_load_signing_key_refuses_a_sec1_ec_key(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError, match="PKCS#8"):
        load_signing_key(_key_file(tmp_path, pem), "KZ:MIA#1")


def test_load_signing_key_refuses_a_corrupt_key_without_leaking_it(tmp_path: Path) -> None:
    pem = private_key_pem(generate_private_key("ed25519"))
    lines = pem.splitlines()
    corrupt = b"\n".join([lines[0], b"AAAAAAAA" + lines[1][8:], lines[-1]])
    with pytest.raises(KeyFileError, match="valid PKCS#8") as caught:
        load_signing_key(_key_file(tmp_path, corrupt), "KZ:MIA#1")
    assert lines[1][8:].decode() not in str(caught.value)
    assert caught.value.__cause__ is None


def test_load_signing_key_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot open"):
        load_signing_key(tmp_path / "absent.pem", "KZ:MIA#1")


def test_load_signing_key_refuses_a_symlink(tmp_path: Path) -> None:
    target = _key_file(tmp_path, private_key_pem(generate_private_key("ed25519")))
    link = tmp_path / "link.pem"
    os.symlink(target, link)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_signing_key(link, "KZ:MIA#1")


def test_load_signing_key_refuses_an_empty_kid(tmp_path: Path) -> None:
    path = _key_file(tmp_path, private_key_pem(generate_private_key("ed25519")))
    with pytest.raises(ValueError, match="kid"):
        load_signing_key(path, "")
