"""Interoperability with two independent JOSE libraries, joserfc and PyJWT."""

from __future__ import annotations

import jwt
import pytest
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, OKPKey

from service.protocol.jws import TYP, parse_compact, sign_compact, verify
from service.protocol.keys import SigningKey, private_key_pem
from service.protocol.problems import Problem
from tests.support.es256 import is_low_s, low_s, twin

PAYLOAD = b'{"v":1,"iss":"KZ:MIA","body":{"name":"\xd0\x90\xd0\xb9\xd0\xb3\xd2\xaf\xd0\xbb"}}'
# joserfc warns that "EdDSA" is deprecated by RFC 9864; the protocol still accepts it.
EDDSA_DEPRECATED = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def _joserfc_private(key: SigningKey) -> OKPKey | ECKey:
    pem = private_key_pem(key.private)
    return OKPKey.import_key(pem) if key.alg == "Ed25519" else ECKey.import_key(pem)


def _joserfc_public(key: SigningKey) -> OKPKey | ECKey:
    jwk: dict[str, str | list[str]] = dict(key.public().jwk())
    return OKPKey.import_key(jwk) if key.alg == "Ed25519" else ECKey.import_key(jwk)


def _joserfc_sign(key: SigningKey, alg: str) -> bytes:
    header = {"alg": alg, "kid": key.kid, "typ": TYP}
    token = joserfc_jws.serialize_compact(header, PAYLOAD, _joserfc_private(key), algorithms=[alg])
    return token.encode()


def _pyjwt_sign(key: SigningKey, alg: str) -> bytes:
    token = jwt.PyJWS().encode(
        PAYLOAD, key.private, algorithm=alg, headers={"kid": key.kid, "typ": TYP}
    )
    return token.encode()


@EDDSA_DEPRECATED
@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_joserfc_ed25519_token_verifies_with_us(ed25519_key: SigningKey, alg: str) -> None:
    parsed = parse_compact(_joserfc_sign(ed25519_key, alg))
    verify(parsed, ed25519_key.public())
    assert (parsed.alg, parsed.payload) == (alg, PAYLOAD)


def test_joserfc_es256_token_verifies_with_us(p256_key: SigningKey) -> None:
    # The libraries leave S as ECDSA gives it; a partner normalizes it to low-S.
    parsed = parse_compact(low_s(_joserfc_sign(p256_key, "ES256")))
    verify(parsed, p256_key.public())
    assert parsed.payload == PAYLOAD


@pytest.mark.parametrize("library", ["joserfc", "pyjwt"])
def test_a_library_es256_token_with_high_s_is_refused(p256_key: SigningKey, library: str) -> None:
    token = (_joserfc_sign if library == "joserfc" else _pyjwt_sign)(p256_key, "ES256")
    # Half of the libraries' signatures are high-S; for the other half, take the twin.
    high = twin(token) if is_low_s(token) else token
    with pytest.raises(Problem) as caught:
        verify(parse_compact(high), p256_key.public())
    assert caught.value.code == "bad-signature"


@EDDSA_DEPRECATED
@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_our_ed25519_token_verifies_with_joserfc(ed25519_key: SigningKey, alg: str) -> None:
    token = sign_compact(ed25519_key, PAYLOAD, alg=alg)
    result = joserfc_jws.deserialize_compact(token, _joserfc_public(ed25519_key), algorithms=[alg])
    assert result.payload == PAYLOAD
    assert result.protected == {"alg": alg, "kid": ed25519_key.kid, "typ": TYP}


def test_our_es256_token_verifies_with_joserfc(p256_key: SigningKey) -> None:
    token = sign_compact(p256_key, PAYLOAD)
    result = joserfc_jws.deserialize_compact(token, _joserfc_public(p256_key), algorithms=["ES256"])
    assert result.payload == PAYLOAD


def test_pyjwt_eddsa_token_verifies_with_us(ed25519_key: SigningKey) -> None:
    parsed = parse_compact(_pyjwt_sign(ed25519_key, "EdDSA"))
    verify(parsed, ed25519_key.public())
    assert (parsed.alg, parsed.payload) == ("EdDSA", PAYLOAD)


def test_pyjwt_es256_token_verifies_with_us(p256_key: SigningKey) -> None:
    parsed = parse_compact(low_s(_pyjwt_sign(p256_key, "ES256")))
    verify(parsed, p256_key.public())
    assert parsed.payload == PAYLOAD


def test_our_eddsa_token_verifies_with_pyjwt(ed25519_key: SigningKey) -> None:
    token = sign_compact(ed25519_key, PAYLOAD, alg="EdDSA")
    result = jwt.PyJWS().decode_complete(
        token, ed25519_key.private.public_key(), algorithms=["EdDSA"]
    )
    assert result["payload"] == PAYLOAD


def test_our_es256_token_verifies_with_pyjwt(p256_key: SigningKey) -> None:
    token = sign_compact(p256_key, PAYLOAD)
    result = jwt.PyJWS().decode_complete(token, p256_key.private.public_key(), algorithms=["ES256"])
    assert result["payload"] == PAYLOAD
    assert result["header"] == {"alg": "ES256", "kid": p256_key.kid, "typ": TYP}
