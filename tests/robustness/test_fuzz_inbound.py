"""Fuzzing the inbound pipeline: hostile bytes are refused with a problem, never a crash.

`check_inbound` runs every pure check of docs/protocol.md section 6. Whatever the bytes,
it must either return a checked message or raise `Refused` carrying a known 4xx
problem; and no change to a validly signed token may be accepted as that token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.config import load_config
from service.config.build import registry_from_config
from service.exchange.inbound import Checked, InboundPolicy, Refused, check_inbound
from service.protocol import envelope, jws
from service.protocol.b64 import b64url_encode
from service.protocol.problems import KINDS, Problem
from service.records.registry import MESSAGE_TYPES
from tests.robustness.federations import module_federation
from tests.support.nodes import NOW, envelope_for, example_body

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROTOCOL_CODES = {code for code, kind in KINDS.items() if 400 <= kind.status < 500}


_FEDERATION = module_federation()
_CONFIG = load_config(_FEDERATION.write_config())
POLICY = InboundPolicy(
    node_party="KZ:MIA",
    registry=registry_from_config(_CONFIG),
    clock_skew=300,
    max_depth=32,
    max_members=10_000,
    max_observations=1000,
)


def _signed_tokens() -> dict[bytes, str | None]:
    """Validly signed tokens and the refusal each gets (None: accepted)."""
    uz, kg = _FEDERATION.uz, _FEDERATION.kg
    stats = {"msg_type": "statistics.migration-flows", "purpose": "statistics"}
    return {
        uz.sign(envelope_for(uz)): None,
        uz.sign(envelope_for(uz, **stats)): None,
        uz.sign(envelope_for(uz), alg="EdDSA"): None,
        # ES256; the KZ-KG agreement is not yet in force.
        kg.sign(envelope_for(kg, agreement="kz-kg-2019", **stats)): "agreement",
    }


SIGNED = _signed_tokens()
VALID = list(SIGNED)


def outcome(raw: bytes) -> Checked | Problem:
    """The pipeline's answer; anything but Checked or Refused fails the test."""
    try:
        return check_inbound(POLICY, raw, float(NOW))
    except Refused as refused:
        problem = refused.problem
    assert problem.code in PROTOCOL_CODES, problem
    assert problem.detail
    return problem


def test_the_signed_tokens_get_their_expected_answer() -> None:
    answers = [outcome(token) for token in VALID]
    assert [getattr(a, "code", None) for a in answers] == list(SIGNED.values())


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused(raw: bytes) -> None:
    assert isinstance(outcome(raw), Problem)


_B64URL = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=200
)


@FUZZ
@given(st.lists(_B64URL, min_size=1, max_size=5))
def test_arbitrary_base64url_segments_are_refused(parts: list[str]) -> None:
    assert isinstance(outcome(".".join(parts).encode()), Problem)


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=15,
)


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    """Headers near the accepted ones: real kids and algs, odd members and values."""
    header: dict[str, Any] = {
        "alg": draw(st.sampled_from(["Ed25519", "EdDSA", "ES256", "none", "HS256", ""]) | JSON),
        "kid": draw(st.sampled_from([_FEDERATION.uz.kid, _FEDERATION.kg.kid, "UZ:MIA#x"]) | JSON),
        "typ": draw(st.sampled_from(["migex+jws", "JWT"]) | JSON),
    }
    for name in draw(st.lists(st.sampled_from(["alg", "kid", "typ"]), max_size=2)):
        header.pop(name, None)
    header.update(draw(st.dictionaries(st.sampled_from(["crit", "jwk", "x5u", "b64"]), JSON)))
    return json.dumps(header, allow_nan=True).encode()


@FUZZ
@given(_headers(), st.binary(max_size=300), st.binary(max_size=80))
def test_crafted_headers_over_any_payload_are_refused(
    header: bytes, payload: bytes, signature: bytes
) -> None:
    token = ".".join(b64url_encode(p) for p in (header, payload, signature)).encode()
    assert isinstance(outcome(token), Problem)


@st.composite
def _mutations(draw: st.DrawFn) -> bytes:
    """A signed token with bytes flipped, cut, inserted, deleted or spliced from another."""
    token = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice"]))
        at = draw(st.integers(0, max(0, len(token) - 1)))
        if kind == "flip" and token:
            token[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del token[at:]
        elif kind == "insert":
            token[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del token[at : at + draw(st.integers(1, 8))]
        else:
            other = draw(st.sampled_from(VALID))
            token = token[:at] + other[draw(st.integers(0, len(other) - 1)) :]
    return bytes(token)


@FUZZ
@given(_mutations())
def test_mutated_valid_tokens_are_refused(mutated: bytes) -> None:
    assume(mutated not in SIGNED)
    assert isinstance(outcome(mutated), Problem)


@FUZZ
@given(st.sampled_from(VALID), st.sampled_from(VALID), st.sampled_from(VALID))
def test_segments_spliced_from_valid_tokens_verify_only_as_themselves(
    a: bytes, b: bytes, c: bytes
) -> None:
    token = b".".join([a.split(b".")[0], b.split(b".")[1], c.split(b".")[2]])
    result = outcome(token)
    assert isinstance(result, Checked) == (token in SIGNED and SIGNED[token] is None)


_ENVELOPE_MEMBERS = envelope.ENVELOPE_MEMBERS


@st.composite
def _signed_payloads(draw: st.DrawFn) -> bytes:
    """Payloads signed by a real partner key: the checks after the signature get exercised."""
    uz = _FEDERATION.uz
    msg_type = draw(st.sampled_from(MESSAGE_TYPES))
    base: dict[str, Any] = envelope_for(
        uz, msg_type=msg_type, body=example_body(msg_type)
    ).to_dict()
    for name in draw(st.lists(st.sampled_from(_ENVELOPE_MEMBERS), max_size=3)):
        if draw(st.booleans()):
            base.pop(name, None)
        else:
            base[name] = draw(JSON)
    base.update(draw(st.dictionaries(st.text(max_size=8), JSON, max_size=2)))
    payload = json.dumps(base, allow_nan=True).encode()
    if draw(st.booleans()):
        payload = draw(st.sampled_from([b"", b"[]", b"null", b'{"v":1,"v":1}'])) + payload
    return jws.sign_compact(uz.key, payload)


@FUZZ
@given(_signed_payloads())
def test_signed_payloads_of_any_shape_are_checked_or_refused(token: bytes) -> None:
    outcome(token)


@FUZZ
@given(st.binary(max_size=1024) | JSON.map(lambda v: json.dumps(v, allow_nan=True).encode()))
def test_envelope_parser_answers_any_payload_with_a_problem(payload: bytes) -> None:
    with pytest.raises(Problem) as refused:
        envelope.parse_payload(payload)
    assert refused.value.code in {"malformed", "bad-envelope"}


@FUZZ
@given(st.sampled_from(_ENVELOPE_MEMBERS), JSON)
def test_envelope_parser_checks_every_member(name: str, value: Any) -> None:
    data = envelope_for(_FEDERATION.uz).to_dict()
    data[name] = value
    payload = json.dumps(data, allow_nan=True).encode()
    try:
        env = envelope.parse_payload(payload)
    except Problem as problem:
        code = problem.code
    else:
        code = None
        assert envelope.parse_payload(envelope.encode_payload(env)) == env
    assert code in {None, "malformed", "bad-envelope"}
