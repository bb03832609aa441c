"""Bearer tokens of auditors, operators and client systems.

The configuration holds only the SHA-256 of each token. `TokenStore.authenticate`
hashes the presented token and compares the digest with every entry using
`hmac.compare_digest`, without stopping at a match, so the time taken does not
depend on which entry (if any) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from service.config.types import ROLES, Role

__all__ = ["ROLES", "Principal", "Role", "TokenStore", "hash_token", "new_token"]
DIGEST_SIZE = hashlib.sha256().digest_size


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as written in the configuration."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, entries: Sequence[tuple[str, Role, bytes]]) -> None:
        for name, role, digest in entries:
            if role not in ROLES:
                raise ValueError(f"token {name}: unknown role {role!r}")
            if len(digest) != DIGEST_SIZE:
                raise ValueError(f"token {name}: a SHA-256 digest has {DIGEST_SIZE} bytes")
        self._entries = tuple(
            (Principal(name, role), bytes(digest)) for name, role, digest in entries
        )

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        """The holder of `token`, or None; compares against every entry in constant time."""
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for principal, digest in self._entries:
            if hmac.compare_digest(presented, digest) and found is None:
                found = principal
        if not token:
            return None
        return found
