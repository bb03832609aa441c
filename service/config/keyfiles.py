"""The files a configuration points at: pinned partner keys and the node's own secrets.

This is the loader's I/O edge. `read_jwk_files` fills in each partner key's `jwk`
from its `jwk_file` (a JWK, or a JWK Set holding the key's kid); `check_key_files`
opens the node's private keys, identifier salt, subject key and KEKs, refusing files that are missing,
unreadable, or readable by group or others. Both return findings (location,
message) instead of stopping at the first problem.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.config.yamlsource import Loc
from service.privacy.sealing import KEK_BYTES
from service.protocol.keys import SigningKey, load_signing_key

if TYPE_CHECKING:
    from service.config.model import NodeConfig, PartnerConfig, PartnerKeyConfig

Finding = tuple[Loc, str]

MAX_JWK_FILE_BYTES = 64 * 1024
MIN_SALT_BYTES = 16
# The disclosure index's HMAC-SHA-256 key: as long as the hash's output.
MIN_SUBJECT_KEY_BYTES = 32
_KIND_NAMES = {"ed25519": "Ed25519", "p256": "P-256"}


def read_jwk_files(cfg: NodeConfig) -> tuple[NodeConfig, list[Finding]]:
    """`cfg` with every `jwk_file` read into `jwk`; findings for unreadable files."""
    findings: list[Finding] = []
    partners: list[PartnerConfig] = []
    for p_index, partner in enumerate(cfg.partners):
        keys: list[PartnerKeyConfig] = []
        for k_index, key in enumerate(partner.keys):
            loc: Loc = ("partners", p_index, "keys", k_index)
            if (key.jwk is None) == (key.jwk_file is None):
                findings.append((loc, f"key {key.kid}: give exactly one of jwk and jwk_file"))
            elif key.jwk_file is not None:
                try:
                    key = key.model_copy(update={"jwk": jwk_from_file(key.jwk_file, key.kid)})
                except ValueError as exc:
                    findings.append(((*loc, "jwk_file"), str(exc)))
            keys.append(key)
        partners.append(partner.model_copy(update={"keys": tuple(keys)}))
    return cfg.model_copy(update={"partners": tuple(partners)}), findings


def jwk_from_file(path: Path, kid: str) -> dict[str, Any]:
    """The JWK for `kid` in a file holding one JWK or a JWK Set; ValueError otherwise."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_JWK_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_JWK_FILE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_JWK_FILE_BYTES} bytes")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if isinstance(value, dict) and "keys" in value:
        members = value["keys"] if isinstance(value["keys"], list) else []
        found = [k for k in members if isinstance(k, dict) and k.get("kid") == kid]
        if len(found) != 1:
            count = "no key" if not found else f"{len(found)} keys"
            raise ValueError(f"the JWK Set in {path} has {count} with kid {kid!r}")
        value = found[0]
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JWK (a JSON object) or a JWK Set")
    return value


def check_key_files(cfg: NodeConfig) -> list[Finding]:
    """Open every private key and the salt file; the audit key must be Ed25519.

    Loading a key also refuses key types other than Ed25519 and P-256, so the
    active key's type needs no separate check.
    """
    findings: list[Finding] = []
    loaded: dict[str, SigningKey] = {}
    for index, entry in enumerate(cfg.node.signing_keys):
        try:
            loaded[entry.kid] = load_signing_key(entry.file, entry.kid, check_permissions=True)
        except ValueError as exc:
            findings.append((("node", "signing_keys", index, "file"), str(exc)))
    findings.extend(_check_key_kinds(cfg, loaded))
    salt = cfg.audit.identifier_salt_file
    if salt is not None:
        problem = secret_file_problem(salt, "salt file", MIN_SALT_BYTES)
        if problem is not None:
            findings.append((("audit", "identifier_salt_file"), problem))
    subject_key = cfg.privacy.subject_key_file
    if subject_key is not None:
        problem = secret_file_problem(subject_key, "subject key file", MIN_SUBJECT_KEY_BYTES)
        if problem is not None:
            findings.append((("privacy", "subject_key_file"), problem))
    for index, kek in enumerate(cfg.privacy.kek_files):
        problem = secret_file_problem(kek.file, "KEK file", KEK_BYTES, exact=True)
        if problem is not None:
            findings.append((("privacy", "kek_files", index, "file"), problem))
    return findings


def _check_key_kinds(cfg: NodeConfig, loaded: dict[str, SigningKey]) -> list[Finding]:
    findings: list[Finding] = []
    audit = loaded.get(cfg.node.audit_kid)
    if audit is not None and audit.public().kind != "ed25519":
        kind = _KIND_NAMES[audit.public().kind]
        findings.append(
            (
                ("node", "audit_kid"),
                f"key {audit.kid} is {kind}; audit checkpoints are signed notes and need an "
                "Ed25519 key",
            )
        )
    witness = loaded.get(cfg.node.witness_kid or "")
    if witness is not None and witness.public().kind != "ed25519":
        kind = _KIND_NAMES[witness.public().kind]
        findings.append(
            (("node", "witness_kid"), f"key {witness.kid} is {kind}; cosignatures need Ed25519")
        )
    return findings


def secret_file_problem(
    path: Path, what: str, min_bytes: int, *, exact: bool = False
) -> str | None:
    """Why the secret file at `path` cannot be used, or None; `exact`: of `min_bytes` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return f"cannot open {what} {path}: {exc.strerror}"
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        return f"{what} {path} is not a regular file"
    if mode & 0o077:
        return (
            f"{what} {path} has mode {mode:04o}; group and others must have no access (chmod 600)"
        )
    if exact and info.st_size != min_bytes:
        return f"{what} {path} holds {info.st_size} bytes; it must hold exactly {min_bytes}"
    if info.st_size < min_bytes:
        return f"{what} {path} holds {info.st_size} bytes; it needs at least {min_bytes}"
    return None


def read_secret_file(path: Path, what: str, min_bytes: int, *, exact: bool = False) -> bytes:
    """The bytes of a secret file, checked as `secret_file_problem` does; ValueError."""
    problem = secret_file_problem(path, what, min_bytes, exact=exact)
    if problem is not None:
        raise ValueError(problem)
    with path.open("rb") as file:
        return file.read()
