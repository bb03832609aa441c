"""Console session cookies and CSRF tokens."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.console.session import SessionCodec, derive_secret, token_fingerprint

NOW = 1_795_000_000.0


def codec() -> SessionCodec:
    return SessionCodec(b"k" * 32)


def test_a_session_reads_back_until_it_expires() -> None:
    value = codec().issue("auditor-1", "auditor", "f" * 16, now=NOW, minutes=30)
    session = codec().read(value, now=NOW + 30 * 60 - 1)
    assert session is not None
    assert (session.name, session.role) == ("auditor-1", "auditor")
    assert codec().read(value, now=NOW + 30 * 60) is None


def test_a_session_signed_with_another_key_is_refused() -> None:
    value = SessionCodec(b"x" * 32).issue("a", "operator", "f", now=NOW, minutes=5)
    assert codec().read(value, now=NOW) is None


def test_an_altered_role_is_refused() -> None:
    value = codec().issue("a", "operator", "f", now=NOW, minutes=5)
    body, mac = value.split(".")
    assert codec().read(body[:-2] + "xx." + mac, now=NOW) is None


def test_garbage_is_not_a_session() -> None:
    for value in ("", ".", "a.b", "%%%.%%%", "x" * 2000, None):
        assert codec().read(value, now=NOW) is None


def test_csrf_tokens_are_per_session() -> None:
    c = codec()
    assert c.check_csrf("one", c.csrf_token("one"))
    assert not c.check_csrf("two", c.csrf_token("one"))
    assert not c.check_csrf("one", None)
    assert not c.check_csrf("one", "")


def test_the_session_key_is_bound_to_the_audit_key() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert derive_secret(a) == derive_secret(a)
    assert derive_secret(a) != derive_secret(b)


def test_a_replaced_token_has_another_fingerprint() -> None:
    assert token_fingerprint("00" * 32) != token_fingerprint("11" * 32)
