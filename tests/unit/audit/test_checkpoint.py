"""C2SP checkpoints: text format, signing and verification."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_text,
    log_origin,
    parse_checkpoint_text,
    sign_checkpoint,
    verify_checkpoint,
)
from service.audit.note import NoteError, verifier_key

KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex("11" * 32))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes.fromhex("22" * 32))
ORIGIN = "migex/KZ:MIA"
VKEY = verifier_key(ORIGIN, KEY.public_key())
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CP = Checkpoint(ORIGIN, 8, ROOT)
# C2SP tlog-checkpoint's example text.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_log_origin_prefixes_party_id() -> None:
    assert log_origin("KZ:MIA") == ORIGIN


def test_checkpoint_text_has_origin_size_and_base64_root() -> None:
    assert checkpoint_text(CP) == "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"


def test_parse_checkpoint_text_reads_specification_example() -> None:
    cp = parse_checkpoint_text(SPEC_TEXT)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_checkpoint_text_round_trips() -> None:
    assert parse_checkpoint_text(checkpoint_text(CP)) == CP


def test_parse_checkpoint_text_ignores_extension_lines() -> None:
    assert parse_checkpoint_text(checkpoint_text(CP) + "ext one\next two\n") == CP


@pytest.mark.parametrize(
    "text",
    [
        "migex/KZ:MIA\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # leading zero
        "migex/KZ:MIA\n-8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # sign
        "migex/KZ:MIA\n8 \nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # space
        "migex/KZ:MIA\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQ=\n",  # short root
        "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",  # non-canonical
        "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n",  # no padding
        "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",  # no newline
        "migex/KZ:MIA\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\next\n",  # empty line
        "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # empty origin
        "migex/KZ:MIA\n8\n",  # two lines
    ],
)
def test_parse_checkpoint_text_refuses_malformed_text(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint_text(text)


def test_parse_checkpoint_text_accepts_largest_size() -> None:
    text = checkpoint_text(Checkpoint(ORIGIN, 2**64 - 1, ROOT))
    assert parse_checkpoint_text(text).size == 2**64 - 1


def test_checkpoint_text_refuses_short_root() -> None:
    with pytest.raises(CheckpointError, match="32 bytes"):
        checkpoint_text(Checkpoint(ORIGIN, 8, ROOT[:31]))


def test_checkpoint_text_refuses_origin_with_newline() -> None:
    with pytest.raises(CheckpointError, match="one non-empty line"):
        checkpoint_text(Checkpoint("migex/KZ:MIA\n9", 8, ROOT))


def test_signed_checkpoint_verifies() -> None:
    assert verify_checkpoint(sign_checkpoint(CP, ORIGIN, KEY), VKEY) == CP


def test_signed_checkpoint_is_a_note_with_em_dash_signature_line() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    assert note.startswith(checkpoint_text(CP) + "\n\u2014 migex/KZ:MIA ")


def test_verify_checkpoint_refuses_other_key() -> None:
    note = sign_checkpoint(CP, ORIGIN, OTHER)
    with pytest.raises(NoteError):
        verify_checkpoint(note, VKEY)


def test_verify_checkpoint_refuses_changed_size() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY).replace("\n8\n", "\n9\n", 1)
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(note, VKEY)


def test_verify_checkpoint_refuses_origin_other_than_key_name() -> None:
    cp = Checkpoint("migex/UZ:MIA", 8, ROOT)
    with pytest.raises(CheckpointError, match="migex/UZ:MIA"):
        verify_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), VKEY)


def test_verify_checkpoint_checks_explicit_origin() -> None:
    with pytest.raises(CheckpointError, match="not 'migex/KG:SRS'"):
        verify_checkpoint(sign_checkpoint(CP, ORIGIN, KEY), VKEY, origin="migex/KG:SRS")


def test_verify_checkpoint_accepts_explicit_origin_differing_from_key_name() -> None:
    vkey = verifier_key("audit-2026", KEY.public_key())
    note = sign_checkpoint(CP, "audit-2026", KEY)
    assert verify_checkpoint(note, vkey, origin=ORIGIN) == CP
