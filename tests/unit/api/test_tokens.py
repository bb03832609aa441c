"""Bearer tokens: stored as SHA-256, compared in constant time against every entry."""

from __future__ import annotations

import hashlib

import pytest

from service.api import tokens
from service.api.tokens import Principal, TokenStore, hash_token, new_token


def store() -> TokenStore:
    return TokenStore(
        [
            ("auditor-kz-1", "auditor", hashlib.sha256(b"token-a").digest()),
            ("operator-kz-1", "operator", hashlib.sha256(b"token-o").digest()),
            ("client-kz-1", "client", hashlib.sha256(b"token-c").digest()),
        ]
    )


def test_hash_token_is_hex_sha256_known_answer() -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_known_token_authenticates_its_holder_and_role() -> None:
    assert store().authenticate("token-o") == Principal("operator-kz-1", "operator")


def test_unknown_token_is_refused() -> None:
    assert store().authenticate("token-x") is None


def test_empty_token_is_refused_even_if_its_hash_is_listed() -> None:
    listed = TokenStore([("empty", "auditor", hashlib.sha256(b"").digest())])
    assert listed.authenticate("") is None


def test_every_entry_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = tokens.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    assert store().authenticate("token-a") == Principal("auditor-kz-1", "auditor")
    assert len(calls) == 3


def test_digest_of_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenStore([("x", "auditor", b"\x00" * 31)])


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        TokenStore([("x", "admin", b"\x00" * 32)])  # type: ignore[list-item]


def test_new_tokens_are_long_and_distinct() -> None:
    first, second = new_token(), new_token()
    assert len(first) == 43
    assert first != second


def test_token_with_a_lone_surrogate_is_refused_without_error() -> None:
    assert store().authenticate("\udcff") is None
