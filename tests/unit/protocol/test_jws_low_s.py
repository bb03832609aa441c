"""ES256 signatures must be low-S: the high-S twin of a valid signature is refused.

Known answers: RFC 6979 appendix A.2.5 (P-256, SHA-256), whose key is the fixed test
key of these tests. Its signature over "sample" happens to be high-S and its
signature over "test" low-S, so each gives one side of the rule.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from service.protocol.jws import (
    P256_HALF_ORDER,
    P256_ORDER,
    es256_signature,
    parse_compact,
    sign_compact,
    sign_raw,
    verify,
    verify_raw,
)
from service.protocol.keys import SigningKey
from service.protocol.problems import Problem
from tests.support.es256 import is_low_s, split_signature, twin

RFC6979_UX = 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
RFC6979_UY = 0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299
# (message, r, s) of RFC 6979 A.2.5 with SHA-256.
SAMPLE = (
    b"sample",
    0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
    0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
)
TEST = (
    b"test",
    0xF1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367,
    0x019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083,
)


def _raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.fixture
def rfc6979_public(p256_key: SigningKey) -> ec.EllipticCurvePublicKey:
    public = p256_key.public().key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    assert (numbers.x, numbers.y) == (RFC6979_UX, RFC6979_UY)
    return public


def test_the_vectors_have_one_high_s_and_one_low_s_signature() -> None:
    assert SAMPLE[2] > P256_HALF_ORDER >= TEST[2]


def test_the_low_s_rfc6979_signature_is_accepted(
    rfc6979_public: ec.EllipticCurvePublicKey,
) -> None:
    message, r, s = TEST
    verify_raw(rfc6979_public, "ES256", message, _raw(r, s))


def test_the_high_s_twin_of_a_low_s_signature_is_refused(
    rfc6979_public: ec.EllipticCurvePublicKey,
) -> None:
    message, r, s = TEST
    with pytest.raises(Problem) as caught:
        verify_raw(rfc6979_public, "ES256", message, _raw(r, P256_ORDER - s))
    assert caught.value.code == "bad-signature"
    assert "low-S" in caught.value.detail


def test_the_high_s_rfc6979_signature_is_refused(
    rfc6979_public: ec.EllipticCurvePublicKey,
) -> None:
    message, r, s = SAMPLE
    with pytest.raises(Problem) as caught:
        verify_raw(rfc6979_public, "ES256", message, _raw(r, s))
    assert caught.value.code == "bad-signature"


def test_the_low_s_twin_of_the_high_s_rfc6979_signature_is_accepted(
    rfc6979_public: ec.EllipticCurvePublicKey,
) -> None:
    message, r, s = SAMPLE
    verify_raw(rfc6979_public, "ES256", message, _raw(r, P256_ORDER - s))


def test_es256_signature_encodes_the_low_s_form() -> None:
    _, r, s = SAMPLE
    assert es256_signature(r, s) == _raw(r, P256_ORDER - s)
    _, r, s = TEST
    assert es256_signature(r, s) == _raw(r, s)


def test_the_node_signs_es256_with_low_s_only(p256_key: SigningKey) -> None:
    # ECDSA is randomized: half of the raw signatures are high-S, so 64 signatures
    # all low-S happen by chance once in 2**64.
    for n in range(64):
        signing_input = b"receipt %d" % n
        signature = sign_raw(p256_key.private, "ES256", signing_input)
        assert int.from_bytes(signature[32:], "big") <= P256_HALF_ORDER
        verify_raw(p256_key.public().key, "ES256", signing_input, signature)


def test_the_node_normalizes_the_library_signature_it_gets(p256_key: SigningKey) -> None:
    # The private key's own signatures include high-S ones; sign_raw turns each into
    # its low-S twin, which is the same signature under plain ECDSA.
    private = p256_key.private
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    highs = 0
    for n in range(64):
        r, s = decode_dss_signature(private.sign(b"x%d" % n, ec.ECDSA(hashes.SHA256())))
        highs += s > P256_HALF_ORDER
        assert es256_signature(r, s) == _raw(r, min(s, P256_ORDER - s))
    assert highs > 0


def test_a_token_and_its_high_s_twin_are_told_apart(p256_key: SigningKey) -> None:
    token = sign_compact(p256_key, b'{"v":1}')
    assert is_low_s(token)
    verify(parse_compact(token), p256_key.public())
    other = twin(token)
    assert split_signature(other)[1:] == (
        split_signature(token)[1],
        P256_ORDER - split_signature(token)[2],
    )
    with pytest.raises(Problem) as caught:
        verify(parse_compact(other), p256_key.public())
    assert caught.value.code == "bad-signature"
