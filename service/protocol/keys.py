"""Signing keys: Ed25519 and ECDSA P-256, their JWK form and their key files.

Public keys of partners come from the operator's configuration as JWKs and are
parsed strictly. The node's own private keys live in PKCS#8 PEM files that only
their owner may read; errors about them name the file and the problem, never
any key material.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from service.protocol.b64 import b64url_decode, b64url_encode

PublicKeyType = Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKeyType = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
KeyKind = Literal["ed25519", "p256"]

MAX_KID_LENGTH = 128
MAX_KEY_FILE_BYTES = 64 * 1024
_COORDINATE_BYTES = 32
# JWK members that carry private or symmetric key material (RFC 7518 section 6).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PEM_LABEL = b"-----BEGIN PRIVATE KEY-----"


class KeyFileError(ValueError):
    """A key file is missing, unreadable, too widely readable or not a usable key."""


class KeyFileExistsError(KeyFileError, FileExistsError):
    """A key file already exists and is never overwritten."""


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID_LENGTH:
        raise ValueError(f"kid must be a string of 1 to {MAX_KID_LENGTH} characters")
    return kid


def _is_p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> bool:
    return isinstance(key.curve, ec.SECP256R1)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key and its key id."""

    kid: str
    key: PublicKeyType

    def __post_init__(self) -> None:
        _check_kid(self.kid)
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            if not _is_p256(self.key):
                raise ValueError(f"key {self.kid}: only the P-256 curve is supported")
        elif not isinstance(self.key, Ed25519PublicKey):
            raise ValueError(f"key {self.kid}: only Ed25519 and P-256 keys are supported")

    @property
    def kind(self) -> KeyKind:
        return "ed25519" if isinstance(self.key, Ed25519PublicKey) else "p256"

    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 7517, RFC 8037) of this key."""
        if isinstance(self.key, Ed25519PublicKey):
            raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64url_encode(raw),
                "kid": self.kid,
                "use": "sig",
            }
        numbers = self.key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
            "kid": self.kid,
            "use": "sig",
        }


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key this node signs with, and its key id."""

    kid: str
    private: PrivateKeyType = field(repr=False)

    def __post_init__(self) -> None:
        _check_kid(self.kid)
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            if not _is_p256(self.private):
                raise ValueError(f"key {self.kid}: only the P-256 curve is supported")
        elif not isinstance(self.private, Ed25519PrivateKey):
            raise ValueError(f"key {self.kid}: only Ed25519 and P-256 keys are supported")

    @property
    def alg(self) -> str:
        """The JWS algorithm this key signs with by default."""
        return "Ed25519" if isinstance(self.private, Ed25519PrivateKey) else "ES256"

    def public(self) -> PublicKey:
        return PublicKey(self.kid, self.private.public_key())


def algs_for(key: PublicKey) -> frozenset[str]:
    """The JWS algorithms a key of this type can verify."""
    return frozenset({"Ed25519", "EdDSA"}) if key.kind == "ed25519" else frozenset({"ES256"})


def _jwk_string(jwk: Mapping[str, Any], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"JWK member {name!r} must be a string")
    return value


def _jwk_bytes(jwk: Mapping[str, Any], name: str, length: int) -> bytes:
    try:
        raw = b64url_decode(_jwk_string(jwk, name))
    except ValueError as exc:
        raise ValueError(f"JWK member {name!r} is not valid base64url: {exc}") from None
    if len(raw) != length:
        raise ValueError(f"JWK member {name!r} must encode {length} bytes, not {len(raw)}")
    return raw


def _check_jwk_usage(jwk: Mapping[str, Any], algs: frozenset[str]) -> None:
    if "use" in jwk and jwk["use"] != "sig":
        raise ValueError("JWK 'use' must be 'sig'")
    if "alg" in jwk and jwk["alg"] not in algs:
        raise ValueError(f"JWK 'alg' {jwk['alg']!r} does not fit this key type")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("JWK 'key_ops' must include 'verify'")


def _public_from_members(jwk: Mapping[str, Any]) -> PublicKeyType:
    kty = jwk.get("kty")
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise ValueError("OKP JWK must have crv 'Ed25519'")
        if "y" in jwk:
            raise ValueError("OKP JWK must not have a 'y' member")
        _check_jwk_usage(jwk, frozenset({"Ed25519", "EdDSA"}))
        return Ed25519PublicKey.from_public_bytes(_jwk_bytes(jwk, "x", 32))
    if kty == "EC":
        if jwk.get("crv") != "P-256":
            raise ValueError("EC JWK must have crv 'P-256'")
        _check_jwk_usage(jwk, frozenset({"ES256"}))
        point = b"\x04" + _jwk_bytes(jwk, "x", 32) + _jwk_bytes(jwk, "y", 32)
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            raise ValueError("EC JWK point is not on the P-256 curve") from None
    raise ValueError(f"JWK kty must be 'OKP' or 'EC', not {kty!r}")


def public_key_from_jwk(jwk: Mapping[str, Any], *, kid: str | None = None) -> PublicKey:
    """Parse a public JWK strictly; `kid` supplies or must equal the JWK's own."""
    if not isinstance(jwk, Mapping):
        raise ValueError("JWK must be a JSON object")
    private = sorted(_PRIVATE_MEMBERS.intersection(jwk))
    if private:
        raise ValueError(
            f"JWK holds private key material ({', '.join(private)}); give the public key only"
        )
    jwk_kid = jwk.get("kid")
    if jwk_kid is not None and kid is not None and jwk_kid != kid:
        raise ValueError(f"JWK kid {jwk_kid!r} differs from the expected kid {kid!r}")
    chosen = kid if kid is not None else jwk_kid
    if chosen is None:
        raise ValueError("JWK has no kid and none was given")
    return PublicKey(_check_kid(chosen), _public_from_members(jwk))


def jwks(keys: Iterable[PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (RFC 7517 section 5) of public keys."""
    return {"keys": [key.jwk() for key in keys]}


def generate_private_key(kind: KeyKind) -> PrivateKeyType:
    if kind == "ed25519":
        return Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r}")


def private_key_pem(private: PrivateKeyType) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's permissions protect it)."""
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(path: Path, private: PrivateKeyType) -> None:
    """Create `path` with mode 0600 holding the key; an existing file is never replaced."""
    pem = private_key_pem(private)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyFileExistsError(f"{path}: file exists; key files are never overwritten") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(pem)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror}") from None
    os.close(fd)


def _read_key_file(path: Path, check_permissions: bool) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open key file: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        # Checked before fdopen, which refuses a directory with an error naming the fd.
        os.close(fd)
        raise KeyFileError(f"{path}: key file is not a regular file")
    with os.fdopen(fd, "rb") as file:
        mode = stat.S_IMODE(info.st_mode)
        if check_permissions and mode & 0o077:
            raise KeyFileError(
                f"{path}: key file mode is {mode:04o}; group and others must have no access "
                "(chmod 600)"
            )
        data = file.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: key file is larger than {MAX_KEY_FILE_BYTES} bytes")
    return data


def _parse_pem(path: Path, data: bytes) -> PrivateKeyType:
    if data.lstrip().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
        raise KeyFileError(f"{path}: encrypted key files are not supported")
    if not data.lstrip().startswith(_PEM_LABEL) or data.count(b"-----BEGIN") != 1:
        raise KeyFileError(f"{path}: not a single PKCS#8 PEM private key ('{_PEM_LABEL.decode()}')")
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(f"{path}: key file does not hold a valid PKCS#8 private key") from None
    if isinstance(private, Ed25519PrivateKey):
        return private
    if isinstance(private, ec.EllipticCurvePrivateKey) and _is_p256(private):
        return private
    raise KeyFileError(f"{path}: key type is not supported; use Ed25519 or ECDSA P-256")


def load_signing_key(path: Path, kid: str, *, check_permissions: bool = True) -> SigningKey:
    """Load a PKCS#8 PEM Ed25519 or P-256 private key file as `kid`'s signing key."""
    return SigningKey(_check_kid(kid), _parse_pem(path, _read_key_file(path, check_permissions)))
