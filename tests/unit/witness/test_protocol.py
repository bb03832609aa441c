"""tlog-witness add-checkpoint bodies: the spec's examples, round trips, and refusals."""

from __future__ import annotations

import pytest

from service.witness.protocol import (
    MAX_REQUEST_BYTES,
    WitnessProtocolError,
    parse_cosignatures,
    parse_request,
    parse_size,
    render_cosignatures,
    render_request,
    render_size,
)

# The example request body of C2SP tlog-witness.
SPEC_NOTE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zh"
    "cyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49"
    "/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)
SPEC_PROOF = (
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
)
SPEC_BODY = f"old 20852014\n{SPEC_PROOF}\n{SPEC_NOTE}".encode()
SPEC_ANSWER = (
    "\u2014 witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSv"
    "VjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"
    "\u2014 witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64"
    "vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n"
    "\u2014 witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKb"
    "YKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
)


def test_spec_example_request_parses() -> None:
    req = parse_request(SPEC_BODY)
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert req.proof[0].hex().startswith("3e544d0a")
    assert req.note == SPEC_NOTE


def test_spec_example_request_round_trips() -> None:
    req = parse_request(SPEC_BODY)
    assert render_request(req.old_size, req.proof, req.note) == SPEC_BODY


def test_request_without_proof() -> None:
    body = render_request(0, [], SPEC_NOTE)
    assert body.startswith(b"old 0\n\nexample.com/")
    assert parse_request(body).proof == ()


def test_spec_example_answer_splits_into_three_lines() -> None:
    lines = parse_cosignatures(SPEC_ANSWER.encode())
    assert len(lines) == 3
    assert render_cosignatures(lines) == SPEC_ANSWER.encode()


def test_sixty_three_proof_lines_are_the_most() -> None:
    proof = [bytes([i]) * 32 for i in range(63)]
    assert len(parse_request(render_request(5, proof, SPEC_NOTE)).proof) == 63
    too_long = b"old 5\n" + b"".join(
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" for _ in range(64)
    )
    with pytest.raises(WitnessProtocolError, match="63"):
        parse_request(too_long + b"\n" + SPEC_NOTE.encode())
    with pytest.raises(WitnessProtocolError, match="63"):
        render_request(5, [*proof, proof[0]], SPEC_NOTE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 5\n", "empty line"),
        (b"new 5\n\n" + SPEC_NOTE.encode(), "old <size>"),
        (b"old  5\n\n" + SPEC_NOTE.encode(), "leading zeros"),
        (b"old 05\n\n" + SPEC_NOTE.encode(), "leading zeros"),
        (b"old -1\n\n" + SPEC_NOTE.encode(), "leading zeros"),
        (b"old 18446744073709551616\n\n" + SPEC_NOTE.encode(), "2\\*\\*64"),
        (b"old 5\nnot base64\n\n" + SPEC_NOTE.encode(), "base64"),
        (b"old 5\nAAAA\n\n" + SPEC_NOTE.encode(), "32 bytes"),
        (b"old 5\n\n", "no checkpoint"),
        (b"old 5\n\n\xff", "UTF-8"),
        (b"old 5\n\n" + b"x" * MAX_REQUEST_BYTES, "at most"),
    ],
)
def test_malformed_requests_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(WitnessProtocolError, match=message):
        parse_request(body)


def test_size_body_round_trips() -> None:
    assert render_size(0) == b"0\n"
    assert parse_size(render_size(20852014)) == 20852014


@pytest.mark.parametrize("body", [b"", b"5", b"05\n", b"5 \n", b"x\n", b"5\n\n", b"\xff\n"])
def test_malformed_size_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WitnessProtocolError):
        parse_size(body)


@pytest.mark.parametrize("body", [b"", b"hello\n", b"\xe2\x80\x94 w AAAA", b"\xff\n"])
def test_malformed_answers_are_refused(body: bytes) -> None:
    with pytest.raises(WitnessProtocolError):
        parse_cosignatures(body)
