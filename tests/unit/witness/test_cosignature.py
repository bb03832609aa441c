"""C2SP tlog-cosignature (Ed25519, cosignature/v1): the spec's example, and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import parse_verifier_key, sign_note, verifier_key
from service.witness.cosignature import (
    CosignatureError,
    CosignerKey,
    cosign,
    find_cosignature,
    parse_cosignature,
    parse_cosigner_vkey,
    signed_message,
    verify_line,
)

# The checkpoint and cosignature of the C2SP tlog-cosignature document.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
SPEC_MESSAGE = (
    "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
# RFC 8032 section 7.1, test 1: Ed25519 is deterministic, so this line is fixed.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_VKEY = "witness.example.com/w1+7e6f4aaa+BNdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"
RFC8032_LINE = (
    "\u2014 witness.example.com/w1 fm9KqgAAAABkGFDL+TPmh4BYuAjsYRoqMJCWb/gWJaeRF/kmm5tlCr9sJ57D"
    "LErur7K0yDXc2ArN+TIuotuB/HbuL3AJsp3bv/aNCQ==\n"
)
NAME = "witness.example.com/w1"


def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)


def rfc_cosigner() -> CosignerKey:
    return CosignerKey(NAME, rfc_key().public_key())


def test_spec_signed_message_is_header_time_and_whole_body() -> None:
    assert signed_message(SPEC_BODY, 1679315147) == SPEC_MESSAGE.encode()


def test_spec_cosignature_line_parses_to_its_key_id_and_time() -> None:
    cosig = parse_cosignature(SPEC_LINE)
    assert cosig.name == NAME
    assert cosig.key_id == 0x8D66CF3F
    assert cosig.timestamp == 1679315147
    assert len(cosig.signature) == 64


def test_key_id_is_sha256_of_name_newline_0x04_and_key() -> None:
    digest = hashlib.sha256(NAME.encode() + b"\n\x04" + RFC8032_PUBLIC).digest()
    assert rfc_cosigner().key_id == int.from_bytes(digest[:4], "big")


def test_vkey_uses_type_byte_0x04() -> None:
    vkey = rfc_cosigner().vkey
    assert vkey == RFC8032_VKEY
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert parse_cosigner_vkey(vkey).public.public_bytes_raw() == RFC8032_PUBLIC


def test_cosign_with_rfc8032_key_gives_the_fixed_line() -> None:
    assert cosign(SPEC_BODY, NAME, rfc_key(), 1679315147) == RFC8032_LINE


def test_cosignature_verifies_and_returns_its_time() -> None:
    assert verify_line(SPEC_BODY, RFC8032_LINE, parse_cosigner_vkey(RFC8032_VKEY)) == 1679315147


def test_cosignature_covers_extension_lines() -> None:
    body = SPEC_BODY + "extension line\n"
    line = cosign(body, NAME, rfc_key(), 5)
    assert verify_line(body, line, rfc_cosigner()) == 5
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_line(SPEC_BODY, line, rfc_cosigner())


def test_cosignature_over_another_root_does_not_verify() -> None:
    other = SPEC_BODY.replace("CsUY", "DsUY")
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_line(other, RFC8032_LINE, rfc_cosigner())


def test_flipped_timestamp_bit_does_not_verify() -> None:
    blob = bytearray(base64.b64decode(RFC8032_LINE.split(" ")[2]))
    blob[11] ^= 1
    line = f"\u2014 {NAME} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CosignatureError, match="does not verify"):
        verify_line(SPEC_BODY, line, rfc_cosigner())


def test_another_key_is_refused_before_verifying() -> None:
    other = CosignerKey(NAME, Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
    with pytest.raises(CosignatureError, match="not by"):
        verify_line(SPEC_BODY, RFC8032_LINE, other)


def test_tlog_witness_example_line_with_time_past_2_63_is_refused() -> None:
    # The second example answer line of C2SP tlog-witness decodes to a time above 2**63 - 1.
    line = (
        "\u2014 witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39Qs"
        "ZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw=="
    )
    with pytest.raises(CosignatureError, match="2\\*\\*63"):
        parse_cosignature(line)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "- witness AAAA",
        "\u2014 witness",
        "\u2014 witness !!!!",
        "\u2014 wit ness AAAAAAAA",
        # a note signature (4 + 64 bytes), not a cosignature (4 + 8 + 64)
        "\u2014 w " + base64.b64encode(bytes(68)).decode(),
        "\u2014 w " + base64.b64encode(bytes(77)).decode(),
    ],
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(CosignatureError):
        parse_cosignature(line)


def test_note_verifier_key_is_not_a_cosigner_key() -> None:
    note_vkey = verifier_key(NAME, rfc_key().public_key())
    with pytest.raises(CosignatureError, match="0x04"):
        parse_cosigner_vkey(note_vkey)
    with pytest.raises(ValueError, match="0x01"):
        parse_verifier_key(RFC8032_VKEY)


def test_vkey_with_wrong_key_id_is_refused() -> None:
    name, _, key = RFC8032_VKEY.split("+", 2)
    with pytest.raises(CosignatureError, match="key id"):
        parse_cosigner_vkey(f"{name}+00000000+{key}")


def test_find_cosignature_in_a_cosigned_note() -> None:
    log = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    note = sign_note(SPEC_BODY, "example.com/behind-the-sofa", log)
    assert find_cosignature(note, rfc_cosigner()) is None
    assert find_cosignature(note + RFC8032_LINE, rfc_cosigner()) == 1679315147


def test_find_cosignature_raises_on_a_bad_line_claiming_the_key() -> None:
    log = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    note = sign_note(SPEC_BODY.replace("2163", "2164"), "example.com/behind-the-sofa", log)
    with pytest.raises(CosignatureError, match="does not verify"):
        find_cosignature(note + RFC8032_LINE, rfc_cosigner())


@pytest.mark.parametrize("timestamp", [-1, 2**63, True])
def test_out_of_range_times_are_refused(timestamp: int) -> None:
    with pytest.raises(CosignatureError):
        cosign(SPEC_BODY, NAME, rfc_key(), timestamp)


def test_body_must_end_in_newline() -> None:
    with pytest.raises(CosignatureError):
        cosign(SPEC_BODY[:-1], NAME, rfc_key(), 1)
