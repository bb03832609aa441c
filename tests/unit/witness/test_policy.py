"""C2SP tlog-policy: parsing, k-of-n groups, quorum, and evaluation of cosigned checkpoints."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.checkpoint import Checkpoint, checkpoint_text, sign_checkpoint
from service.audit.note import verifier_key
from service.witness.cosignature import CosignerKey, cosign
from service.witness.policy import PolicyError, evaluate, log_signed, parse_policy

LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ORIGIN = "migex/KZ:MIA"
CP = Checkpoint(ORIGIN, 7, bytes(32))


def witness_key(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


def wvkey(n: int) -> str:
    return CosignerKey(f"w{n}.example", witness_key(n).public_key()).vkey


def lvkey() -> str:
    return verifier_key(ORIGIN, LOG_KEY.public_key())


FEDERATION = f"""
# the four-country federation, seen from KZ
log {lvkey()}
witness UZ {wvkey(1)} http://127.0.0.1:1/v1/witness
witness KG {wvkey(2)}
\twitness  TJ\t{wvkey(3)}
group partners 2 UZ KG TJ
quorum partners
"""


def note_cosigned_by(*ns: int, body: str | None = None) -> str:
    note = sign_checkpoint(CP, ORIGIN, LOG_KEY)
    text = body or checkpoint_text(CP)
    return note + "".join(cosign(text, f"w{n}.example", witness_key(n), 100 + n) for n in ns)


def test_federation_policy_parses() -> None:
    policy = parse_policy(FEDERATION)
    assert set(policy.witnesses) == {"UZ", "KG", "TJ"}
    assert policy.witnesses["UZ"].url == "http://127.0.0.1:1/v1/witness"
    assert policy.witnesses["KG"].url is None
    assert policy.groups["partners"].threshold == 2
    assert policy.quorum == "partners"
    assert policy.quorum_witnesses() == {"UZ", "KG", "TJ"}


@pytest.mark.parametrize(
    ("cosigners", "met"),
    [((), False), ((1,), False), ((1, 2), True), ((2, 3), True), ((1, 2, 3), True)],
)
def test_two_of_three(cosigners: tuple[int, ...], met: bool) -> None:
    report = evaluate(parse_policy(FEDERATION), note_cosigned_by(*cosigners))
    assert report.met is met
    names = {1: "UZ", 2: "KG", 3: "TJ"}
    assert report.cosigned == {names[n]: 100 + n for n in cosigners}


def test_one_witness_cosigning_twice_counts_once() -> None:
    note = note_cosigned_by(1, 1)
    assert not evaluate(parse_policy(FEDERATION), note).met


def test_cosignature_over_another_checkpoint_counts_for_nothing() -> None:
    other = checkpoint_text(Checkpoint(ORIGIN, 7, b"\x01" * 32))
    note = note_cosigned_by(1, body=other) + cosign(
        checkpoint_text(CP), "w2.example", witness_key(2), 1
    )
    report = evaluate(parse_policy(FEDERATION), note)
    assert not report.met
    assert report.invalid == ("UZ",)
    assert report.cosigned == {"KG": 1}


def test_unknown_cosigners_are_ignored() -> None:
    note = note_cosigned_by(1, 9)
    report = evaluate(parse_policy(FEDERATION), note)
    assert report.cosigned == {"UZ": 101}
    assert report.invalid == ()


def test_nested_groups_as_in_the_spec_example() -> None:
    lines = [
        *(f"witness X{i} {wvkey(i)}" for i in (1, 2, 3)),
        "group X-witnesses 2 X1 X2 X3",
        *(f"witness Y{i} {wvkey(i + 3)}" for i in (1, 2, 3)),
        "group Y-witnesses any Y1 Y2 Y3",
        "group X-and-Y all X-witnesses Y-witnesses",
        "quorum X-and-Y",
    ]
    text = "\n".join(lines) + "\n"
    policy = parse_policy(text)
    assert policy.met_by({"X1", "X3", "Y2"})
    assert not policy.met_by({"X1", "Y1", "Y2", "Y3"})
    assert not policy.met_by({"X1", "X2", "X3"})


def test_quorum_none_is_met_without_cosignatures() -> None:
    policy = parse_policy("quorum none\n")
    assert evaluate(policy, note_cosigned_by()).met


def test_quorum_of_a_single_witness() -> None:
    policy = parse_policy(f"witness A {wvkey(1)}\nquorum A\n")
    assert policy.met_by({"A"})
    assert not policy.met_by(set())


def test_log_signed_checks_the_listed_logs() -> None:
    policy = parse_policy(FEDERATION)
    assert log_signed(policy, note_cosigned_by())
    other = sign_checkpoint(CP, ORIGIN, witness_key(9))
    assert not log_signed(policy, other)
    assert not log_signed(parse_policy("quorum none\n"), note_cosigned_by())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "quorum line"),
        (f"witness A {wvkey(1)}\n", "quorum line"),
        ("quorum none\nquorum none\n", "exactly one quorum"),
        ("quorum A\n", "not defined"),
        (f"group g 1 A\nwitness A {wvkey(1)}\nquorum g\n", "not defined"),
        (f"witness A {wvkey(1)}\nwitness A {wvkey(2)}\nquorum A\n", "defined twice"),
        (f"witness A {wvkey(1)}\nwitness B {wvkey(1)}\nquorum A\n", "listed twice"),
        (f"witness none {wvkey(1)}\nquorum none\n", "predefined"),
        (f"witness A {wvkey(1)}\ngroup g 1 A none\nquorum g\n", "'none' cannot"),
        (f"witness A {wvkey(1)}\ngroup g 1 A A\nquorum g\n", "at most once"),
        (f"witness A {wvkey(1)}\ngroup g 2 A\nquorum g\n", "between 1"),
        (f"witness A {wvkey(1)}\ngroup g 0 A\nquorum g\n", "between 1"),
        (f"witness A {wvkey(1)}\ngroup g 01 A\nquorum g\n", "decimal"),
        (f"witness A {wvkey(1)}\ngroup g most A\nquorum g\n", "decimal"),
        (f"witness A {wvkey(1)}\ngroup g 1\nquorum g\n", "group line"),
        (f"witness A {lvkey()}\nquorum A\n", "0x04"),
        (f"log {wvkey(1)}\nquorum none\n", "bad log key"),
        ("frobnicate x\nquorum none\n", "unknown keyword"),
        ("quorum none\x00\n", "control characters"),
        (f"witness A {wvkey(1)} http://a http://b\nquorum A\n", "witness line"),
    ],
)
def test_malformed_policies_are_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_error_names_the_line() -> None:
    with pytest.raises(PolicyError, match="line 3"):
        parse_policy("# a comment\n\nquorum nobody\n")


def test_names_are_opaque_octets() -> None:
    kelvin = "\u212a"
    policy = parse_policy(f"witness K {wvkey(1)}\nwitness {kelvin} {wvkey(2)}\nquorum K\n")
    assert set(policy.witnesses) == {"K", kelvin}
