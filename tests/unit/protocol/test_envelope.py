"""Envelope parsing and encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.protocol import jsonstrict
from service.protocol.envelope import (
    ENVELOPE_MEMBERS,
    MAX_EXTRA_LISTED,
    MAX_IAT,
    MAX_NAME_SHOWN,
    Envelope,
    encode_payload,
    envelope_errors,
    is_message_id,
    is_party,
    parse_payload,
)
from service.protocol.problems import Problem
from tests.unit.protocol.samples import envelope_dict


def _payload(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _bad_envelope(obj: Any) -> list[dict[str, str]]:
    with pytest.raises(Problem) as caught:
        parse_payload(_payload(obj))
    assert caught.value.code == "bad-envelope"
    errors: list[dict[str, str]] = caught.value.extra["errors"]
    return errors


def _paths(obj: Any) -> list[str]:
    return [error["path"] for error in _bad_envelope(obj)]


def test_parse_payload_returns_the_envelope() -> None:
    env = parse_payload(_payload(envelope_dict()))
    assert (env.v, env.iss, env.aud, env.iat, env.reply_to) == (
        1,
        "KZ:MIA",
        "UZ:MIA",
        1_764_000_000,
        None,
    )
    assert env.body == {"person": {"iin": "900101300123"}, "reason": "visa-application"}


def test_parse_payload_accepts_a_uuid_reply_to() -> None:
    reply_to = "018f3c1e-7a2b-4c3d-ae4f-0123456789ab"
    assert parse_payload(_payload(envelope_dict(reply_to=reply_to))).reply_to == reply_to


def test_to_dict_keeps_protocol_member_order() -> None:
    assert tuple(parse_payload(_payload(envelope_dict())).to_dict()) == ENVELOPE_MEMBERS


def test_encode_payload_round_trips_through_parse_payload() -> None:
    env = parse_payload(_payload(envelope_dict(body={"name": "Гүлнара"})))
    assert parse_payload(encode_payload(env)) == env


def test_encode_payload_is_compact_json_in_member_order() -> None:
    data = encode_payload(parse_payload(_payload(envelope_dict(body={}))))
    assert data.startswith(b'{"v":1,"id":"018f3c1e-7a2b-7c3d-8e4f-0123456789ab","iss":"KZ:MIA",')
    assert data.endswith(b'"reply_to":null,"body":{}}')


def test_encode_payload_refuses_an_invalid_envelope() -> None:
    env = Envelope(
        1, "not-a-uuid", "KZ:MIA", "UZ:MIA", 0, "receipt", "kz-uz-2019", "statistics", None, {}
    )
    with pytest.raises(ValueError, match="/id"):
        encode_payload(env)


@pytest.mark.parametrize("payload", [b"[]", b'"envelope"', b"1", b"null"])
def test_parse_payload_refuses_a_payload_that_is_not_an_object(payload: bytes) -> None:
    with pytest.raises(Problem, match="malformed"):
        parse_payload(payload)


def test_parse_payload_refuses_invalid_json_as_malformed() -> None:
    with pytest.raises(Problem, match="malformed"):
        parse_payload(b'{"v":1,')


def test_parse_payload_refuses_a_duplicate_member_nested_deep_as_malformed() -> None:
    text = _payload(envelope_dict(body={"a": [{"b": {"c": 1}}]})).replace(
        b'{"c": 1}', b'{"c": 1, "c": 2}'
    )
    with pytest.raises(Problem, match="malformed: duplicate member name 'c'"):
        parse_payload(text)


def test_parse_payload_refuses_a_duplicate_envelope_member_as_malformed() -> None:
    text = _payload(envelope_dict()).replace(b'"v": 1', b'"v": 1, "v": 1')
    with pytest.raises(Problem, match="malformed"):
        parse_payload(text)


def test_parse_payload_applies_the_depth_limit() -> None:
    with pytest.raises(Problem, match="malformed"):
        parse_payload(_payload(envelope_dict(body={"a": [[[[{}]]]]})), max_depth=5)


def test_parse_payload_applies_the_member_limit() -> None:
    with pytest.raises(Problem, match="malformed"):
        parse_payload(_payload(envelope_dict(body={"a": [1, 2, 3]})), max_members=12)


@pytest.mark.parametrize("member", ENVELOPE_MEMBERS)
def test_parse_payload_refuses_a_missing_member(member: str) -> None:
    obj = envelope_dict()
    del obj[member]
    errors = _bad_envelope(obj)
    assert errors == [{"path": f"/{member}", "message": "required member is missing"}]


def test_parse_payload_refuses_an_extra_member() -> None:
    assert _paths(envelope_dict(exp=1)) == ["/exp"]


def test_parse_payload_escapes_extra_member_names_as_json_pointers() -> None:
    assert _paths(envelope_dict(**{"a/b~c": 1})) == ["/a~1b~0c"]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("v", True),
        ("v", 2),
        ("v", 1.0),
        ("v", "1"),
        ("id", "018F3C1E-7A2B-7C3D-8E4F-0123456789AB"),
        ("id", "018f3c1e7a2b7c3d8e4f0123456789ab"),
        ("id", "{018f3c1e-7a2b-7c3d-8e4f-0123456789ab}"),
        ("id", "018f3c1e-7a2b-7c3d-ce4f-0123456789ab"),
        ("id", "018f3c1e-7a2b-7c3d-8\u0435\u0034f-0123456789ab"),
        ("id", "018f3c1e-7a2b-7c3d-0e4f-0123456789ab"),
        ("id", "00000000-0000-0000-0000-000000000000"),
        ("id", "018f3c1e-7a2b-7c3d-8e4f-0123456789ab\n"),
        ("id", 7),
        ("iss", "kz:mia"),
        ("iss", "KZ:M"),
        ("iss", "KZX:MIA"),
        ("iss", "KZ:-MIA"),
        ("iss", "KZ:" + "A" * 33),
        ("aud", "KZ:MIA\n"),
        ("aud", None),
        ("iat", True),
        ("iat", False),
        ("iat", 1_764_000_000.0),
        ("iat", -1),
        ("iat", MAX_IAT + 1),
        ("iat", "1764000000"),
        ("type", "Citizenship.verification-request"),
        ("type", "citizenship..request"),
        ("type", "citizenship."),
        ("type", "a" * 65),
        ("type", ""),
        ("agreement", "KZ-UZ-2019"),
        ("agreement", "-kz"),
        ("agreement", "k" * 65),
        ("purpose", "1statistics"),
        ("purpose", "Statistics"),
        ("purpose", "p" * 65),
        ("reply_to", ""),
        ("reply_to", "018F3C1E-7A2B-7C3D-8E4F-0123456789AB"),
        ("body", []),
        ("body", None),
        ("body", "text"),
    ],
)
def test_parse_payload_refuses_a_member_of_the_wrong_type_or_format(
    member: str, value: Any
) -> None:
    assert _paths(envelope_dict(**{member: value})) == [f"/{member}"]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("iss", "KG:SRS"),
        ("iss", "TJ:A1"),
        ("iss", "KZ:" + "A" * 32),
        ("iat", 0),
        ("iat", MAX_IAT),
        ("type", "receipt"),
        ("type", "a" * 64),
        ("agreement", "cis-1998"),
        ("purpose", "illegal-migration-control"),
        ("id", "018f3c1e-7a2b-4c3d-bfff-0123456789ab"),
    ],
)
def test_parse_payload_accepts_edge_values(member: str, value: Any) -> None:
    assert getattr(parse_payload(_payload(envelope_dict(**{member: value}))), member) == value


def test_parse_payload_lists_every_error() -> None:
    obj = envelope_dict(v=True, iat=-5, extra="x")
    del obj["body"]
    assert sorted(_paths(obj)) == ["/body", "/extra", "/iat", "/v"]


def test_parse_payload_error_detail_names_the_failing_paths() -> None:
    with pytest.raises(Problem) as caught:
        parse_payload(_payload(envelope_dict(iat=True)))
    assert "/iat" in caught.value.detail


def test_envelope_errors_is_empty_for_a_valid_envelope() -> None:
    assert envelope_errors(envelope_dict()) == []


def test_parse_payload_body_keeps_the_parsed_json() -> None:
    body = {"list": [1, 2.5, None, True], "nested": {"k": "v"}}
    assert parse_payload(jsonstrict.dumps(envelope_dict(body=body))).body == body


@pytest.mark.parametrize(("value", "expected"), [("KZ:MIA", True), ("KZ:MIA#1", False), (1, False)])
def test_is_party(value: object, expected: bool) -> None:
    assert is_party(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("018f3c1e-7a2b-7c3d-8e4f-0123456789ab", True),
        ("018f3c1e-7a2b-7c3d-8e4f-0123456789AB", False),
    ],
)
def test_is_message_id(value: object, expected: bool) -> None:
    assert is_message_id(value) is expected


def test_parse_payload_lists_extra_members_up_to_the_limit_then_counts_them() -> None:
    extras = {f"x{i}": i for i in range(MAX_EXTRA_LISTED + 5)}
    errors = _bad_envelope(envelope_dict(**extras))
    assert len(errors) == MAX_EXTRA_LISTED + 1
    assert errors[-1] == {"path": "", "message": "5 more members are not allowed"}


def test_parse_payload_cuts_a_long_extra_member_name() -> None:
    assert _paths(envelope_dict(**{"n" * 10_000: 1})) == ["/" + "n" * MAX_NAME_SHOWN]
