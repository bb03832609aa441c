"""JWS compact parsing, verification and signing."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from service.protocol import jsonstrict
from service.protocol.b64 import b64url_decode, b64url_encode
from service.protocol.jws import (
    ParsedJWS,
    parse_compact,
    sign_compact,
    sign_raw,
    verify,
    verify_raw,
)
from service.protocol.keys import SigningKey, public_key_from_jwk
from service.protocol.problems import Problem

# RFC 8037 appendix A.1/A.2 key and appendix A.4 signature.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
PAYLOAD = b'{"v":1}'


def _header(**members: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "Ed25519", "kid": "KZ:MIA#2026-01", "typ": "migex+jws"}
    header.update(members)
    return {name: value for name, value in header.items() if value is not None}


def _compact(
    header: dict[str, Any] | bytes, key: SigningKey, payload: bytes = PAYLOAD, alg: str = "Ed25519"
) -> bytes:
    raw = header if isinstance(header, bytes) else jsonstrict.dumps(header)
    signing_input = (b64url_encode(raw) + "." + b64url_encode(payload)).encode()
    return signing_input + b"." + b64url_encode(sign_raw(key.private, alg, signing_input)).encode()


def _problem(token: bytes) -> Problem:
    with pytest.raises(Problem) as caught:
        parse_compact(token)
    return caught.value


def _outcome(token: bytes) -> str:
    """ "ok", or the code of the Problem that `parse_compact` raised."""
    try:
        parse_compact(token)
    except Problem as exc:
        return exc.code
    return "ok"


def _verify_problem(parsed: ParsedJWS, key: SigningKey) -> Problem:
    with pytest.raises(Problem) as caught:
        verify(parsed, key.public())
    return caught.value


# Known answers.


def test_rfc8037_key_derives_the_published_public_key() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert SigningKey("rfc8037", private).public().jwk()["x"] == RFC8037_X


def test_sign_raw_reproduces_the_rfc8037_a4_signature() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert sign_raw(private, "EdDSA", RFC8037_SIGNING_INPUT) == b64url_decode(RFC8037_SIGNATURE)


def test_verify_raw_accepts_the_rfc8037_a4_signature() -> None:
    public = public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}, kid="rfc8037")
    verify_raw(public.key, "EdDSA", RFC8037_SIGNING_INPUT, b64url_decode(RFC8037_SIGNATURE))


def test_verify_raw_refuses_the_rfc8037_signature_over_other_bytes() -> None:
    public = public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}, kid="rfc8037")
    with pytest.raises(Problem, match="bad-signature"):
        verify_raw(
            public.key, "EdDSA", RFC8037_SIGNING_INPUT + b"x", b64url_decode(RFC8037_SIGNATURE)
        )


def test_parse_compact_refuses_the_rfc8037_example_header_without_kid_and_typ() -> None:
    token = RFC8037_SIGNING_INPUT + b"." + RFC8037_SIGNATURE.encode()
    assert _problem(token).code == "bad-header"


# Signing.


def test_sign_compact_writes_the_exact_header(ed25519_key: SigningKey) -> None:
    header = b64url_decode(sign_compact(ed25519_key, PAYLOAD).split(b".")[0])
    assert header == b'{"alg":"Ed25519","kid":"KZ:MIA#2026-01","typ":"migex+jws"}'


def test_sign_compact_is_deterministic_for_ed25519(ed25519_key: SigningKey) -> None:
    assert sign_compact(ed25519_key, PAYLOAD) == sign_compact(ed25519_key, PAYLOAD)


def test_sign_compact_writes_legacy_eddsa_when_asked(ed25519_key: SigningKey) -> None:
    parsed = parse_compact(sign_compact(ed25519_key, PAYLOAD, alg="EdDSA"))
    assert parsed.alg == "EdDSA"
    verify(parsed, ed25519_key.public())


def test_sign_compact_es256_emits_a_raw_64_byte_signature(p256_key: SigningKey) -> None:
    parsed = parse_compact(sign_compact(p256_key, PAYLOAD))
    assert (parsed.alg, len(parsed.signature)) == ("ES256", 64)
    verify(parsed, p256_key.public())


def test_sign_compact_refuses_an_alg_that_does_not_fit_the_key(p256_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        sign_compact(p256_key, PAYLOAD, alg="Ed25519")


def test_sign_compact_refuses_an_unsupported_alg(ed25519_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="not supported"):
        sign_compact(ed25519_key, PAYLOAD, alg="HS256")


def test_parse_compact_returns_payload_and_signing_input(ed25519_key: SigningKey) -> None:
    token = sign_compact(ed25519_key, PAYLOAD)
    parsed = parse_compact(token)
    assert parsed.payload == PAYLOAD
    assert parsed.signing_input == token.rsplit(b".", 1)[0]
    assert (parsed.kid, parsed.header["typ"]) == ("KZ:MIA#2026-01", "migex+jws")


def test_parse_compact_does_not_parse_the_payload(ed25519_key: SigningKey) -> None:
    parsed = parse_compact(sign_compact(ed25519_key, b"not json"))
    assert parsed.payload == b"not json"


# Syntax refusals: malformed.


@pytest.mark.parametrize("token", [b"abc", b"a.b", b"a.b.c.d", b"a.b.c.d.e"])
def test_parse_compact_refuses_a_wrong_number_of_parts(token: bytes) -> None:
    assert _problem(token).code == "malformed"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_parse_compact_refuses_an_empty_part(ed25519_key: SigningKey, part: int) -> None:
    parts = sign_compact(ed25519_key, PAYLOAD).split(b".")
    parts[part] = b""
    assert _problem(b".".join(parts)).code == "malformed"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_parse_compact_refuses_base64_padding(ed25519_key: SigningKey, part: int) -> None:
    parts = sign_compact(ed25519_key, PAYLOAD).split(b".")
    parts[part] += b"="
    assert _problem(b".".join(parts)).code == "malformed"


@pytest.mark.parametrize("bad", [b"+", b"/", b" ", b"\n"])
def test_parse_compact_refuses_characters_outside_base64url(
    ed25519_key: SigningKey, bad: bytes
) -> None:
    token = sign_compact(ed25519_key, PAYLOAD)
    assert _problem(token[:10] + bad + token[11:]).code == "malformed"


def test_parse_compact_refuses_non_ascii(ed25519_key: SigningKey) -> None:
    token = sign_compact(ed25519_key, PAYLOAD)
    assert _problem(token + "é".encode()).code == "malformed"


def test_parse_compact_refuses_a_str_token(ed25519_key: SigningKey) -> None:
    token = sign_compact(ed25519_key, PAYLOAD).decode()
    assert _problem(token).code == "malformed"  # type: ignore[arg-type]


def test_parse_compact_refuses_a_header_that_is_not_an_object(ed25519_key: SigningKey) -> None:
    assert _problem(_compact(b'["alg","kid","typ"]', ed25519_key)).code == "malformed"


def test_parse_compact_refuses_a_header_that_is_not_json(ed25519_key: SigningKey) -> None:
    assert _problem(_compact(b"{alg:Ed25519}", ed25519_key)).code == "malformed"


def test_parse_compact_refuses_a_duplicate_header_member(ed25519_key: SigningKey) -> None:
    raw = b'{"alg":"none","alg":"Ed25519","kid":"KZ:MIA#2026-01","typ":"migex+jws"}'
    problem = _problem(_compact(raw, ed25519_key))
    assert (problem.code, "'alg'" in problem.detail) == ("malformed", True)


# Header refusals: bad-header.


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"jku": "https://127.0.0.1/jwks"},
        {"x5u": "https://127.0.0.1/cert"},
        {"jwk": {"kty": "OKP"}},
        {"b64": False},
        {"zip": "DEF"},
        {"cty": "json"},
    ],
)
def test_parse_compact_refuses_an_extra_header_member(
    ed25519_key: SigningKey, extra: dict[str, Any]
) -> None:
    problem = _problem(_compact(_header(**extra), ed25519_key))
    assert (problem.code, next(iter(extra)) in problem.detail) == ("bad-header", True)


@pytest.mark.parametrize("missing", ["alg", "kid", "typ"])
def test_parse_compact_refuses_a_missing_header_member(
    ed25519_key: SigningKey, missing: str
) -> None:
    header = _header()
    del header[missing]
    problem = _problem(_compact(header, ed25519_key))
    assert (problem.code, missing in problem.detail) == ("bad-header", True)


@pytest.mark.parametrize("typ", ["JWT", "MIGEX+JWS", "application/migex+jws", "migex+jws "])
def test_parse_compact_refuses_a_wrong_typ(ed25519_key: SigningKey, typ: str) -> None:
    assert _problem(_compact(_header(typ=typ), ed25519_key)).code == "bad-header"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384", "PS256", "ed25519", ""])
def test_parse_compact_refuses_an_unsupported_alg(ed25519_key: SigningKey, alg: str) -> None:
    assert _problem(_compact(_header(alg=alg), ed25519_key)).code == "bad-header"


@pytest.mark.parametrize("member", ["alg", "kid", "typ"])
def test_parse_compact_refuses_a_header_member_that_is_not_a_string(
    ed25519_key: SigningKey, member: str
) -> None:
    assert _problem(_compact(_header(**{member: 1}), ed25519_key)).code == "bad-header"


@pytest.mark.parametrize("kid", ["", "K" * 129])
def test_parse_compact_refuses_a_kid_of_bad_length(ed25519_key: SigningKey, kid: str) -> None:
    assert _problem(_compact(_header(kid=kid), ed25519_key)).code == "bad-header"


def test_parse_compact_accepts_a_kid_of_128_characters(ed25519_key: SigningKey) -> None:
    assert parse_compact(_compact(_header(kid="K" * 128), ed25519_key)).kid == "K" * 128


def test_parse_compact_accepts_header_members_in_any_order(ed25519_key: SigningKey) -> None:
    raw = b'{"typ":"migex+jws","kid":"KZ:MIA#2026-01","alg":"Ed25519"}'
    verify(parse_compact(_compact(raw, ed25519_key)), ed25519_key.public())


# Verification.


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_verify_accepts_both_eddsa_names_for_an_ed25519_key(
    ed25519_key: SigningKey, alg: str
) -> None:
    verify(parse_compact(_compact(_header(alg=alg), ed25519_key, alg=alg)), ed25519_key.public())


@pytest.mark.parametrize("part", [0, 1, 2])
def test_verify_refuses_a_flipped_bit_in_any_part(ed25519_key: SigningKey, part: int) -> None:
    parts = sign_compact(ed25519_key, PAYLOAD).split(b".")
    raw = bytearray(b64url_decode(parts[part]))
    position = raw.find(b"MIA") if part == 0 else len(raw) - 1  # keeps the header well-formed
    raw[position] ^= 0x01
    parts[part] = b64url_encode(bytes(raw)).encode()
    parsed = parse_compact(b".".join(parts))
    assert _verify_problem(parsed, ed25519_key).code == "bad-signature"


def test_verify_refuses_a_flipped_bit_in_an_es256_signature(p256_key: SigningKey) -> None:
    parts = sign_compact(p256_key, PAYLOAD).split(b".")
    raw = bytearray(b64url_decode(parts[2]))
    raw[0] ^= 0x80
    parts[2] = b64url_encode(bytes(raw)).encode()
    assert _verify_problem(parse_compact(b".".join(parts)), p256_key).code == "bad-signature"


def test_verify_refuses_a_signature_by_another_key(ed25519_key: SigningKey) -> None:
    other = SigningKey(ed25519_key.kid, Ed25519PrivateKey.generate())
    parsed = parse_compact(sign_compact(other, PAYLOAD))
    assert _verify_problem(parsed, ed25519_key).code == "bad-signature"


def test_verify_refuses_an_es256_der_signature(p256_key: SigningKey) -> None:
    header = jsonstrict.dumps(_header(alg="ES256", kid=p256_key.kid))
    signing_input = (b64url_encode(header) + "." + b64url_encode(PAYLOAD)).encode()
    private = p256_key.private
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    der = private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    parsed = parse_compact(signing_input + b"." + b64url_encode(der).encode())
    problem = _verify_problem(parsed, p256_key)
    assert (problem.code, "64 bytes" in problem.detail) == ("bad-signature", True)


def test_verify_refuses_es256_for_an_ed25519_key(
    ed25519_key: SigningKey, p256_key: SigningKey
) -> None:
    parsed = parse_compact(_compact(_header(alg="ES256"), p256_key, alg="ES256"))
    assert _verify_problem(parsed, ed25519_key).code == "bad-signature"


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_verify_refuses_an_eddsa_alg_for_an_es256_key(
    p256_key: SigningKey, ed25519_key: SigningKey, alg: str
) -> None:
    parsed = parse_compact(_compact(_header(alg=alg), ed25519_key, alg=alg))
    assert _verify_problem(parsed, p256_key).code == "bad-signature"


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_verify_refuses_a_signature_of_the_wrong_length(
    ed25519_key: SigningKey, length: int
) -> None:
    signing_input, _, _ = sign_compact(ed25519_key, PAYLOAD).rpartition(b".")
    parsed = ParsedJWS(_header(), "Ed25519", ed25519_key.kid, PAYLOAD, signing_input, bytes(length))
    assert _verify_problem(parsed, ed25519_key).code == "bad-signature"


def test_verify_refuses_an_all_zero_es256_signature(p256_key: SigningKey) -> None:
    signing_input, _, _ = sign_compact(p256_key, PAYLOAD).rpartition(b".")
    parsed = ParsedJWS(
        _header(alg="ES256"), "ES256", p256_key.kid, PAYLOAD, signing_input, bytes(64)
    )
    assert _verify_problem(parsed, p256_key).code == "bad-signature"


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_parse_compact_raises_only_problem_for_arbitrary_bytes(token: bytes) -> None:
    assert _outcome(token) in {"ok", "malformed", "bad-header"}


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=60), min_size=3, max_size=3))
def test_parse_compact_raises_only_problem_for_three_encoded_parts(parts: list[bytes]) -> None:
    token = b".".join(b64url_encode(part).encode() for part in parts)
    assert _outcome(token) in {"ok", "malformed", "bad-header"}
