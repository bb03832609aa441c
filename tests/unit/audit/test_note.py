"""C2SP signed notes: the Go reference implementation's known answer, and refusals."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.note import (
    NoteError,
    key_id,
    open_note,
    parse_verifier_key,
    sign_note,
    split_note,
    verifier_key,
)

# The example of golang.org/x/mod/sumdb/note's documentation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
GO_NOTE = f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n"

OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def go_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(GO_SEED)


def test_go_note_opens_with_go_verifier_key() -> None:
    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT


def test_go_signature_starts_with_key_id() -> None:
    assert base64.b64decode(GO_SIGNATURE)[:4] == bytes.fromhex("c74f20a3")


def test_verifier_key_of_go_key_equals_go_verifier_key() -> None:
    assert verifier_key("PeterNeumann", go_key().public_key()) == GO_VKEY


def test_sign_note_reproduces_go_note_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", go_key()) == GO_NOTE


def test_parse_verifier_key_returns_name_id_and_key() -> None:
    name, ident, public = parse_verifier_key(GO_VKEY)
    assert (name, ident) == ("PeterNeumann", 0xC74F20A3)
    assert public.public_bytes_raw() == go_key().public_key().public_bytes_raw()


def test_key_id_hashes_name_and_key() -> None:
    assert key_id("PeterNeumann", go_key().public_key()) == 0xC74F20A3


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short id
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # truncated
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",  # bad base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # other key
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_parse_verifier_key_refuses_malformed_key(vkey: str) -> None:
    with pytest.raises(ValueError, match="verifier key"):
        parse_verifier_key(vkey)


def test_open_note_refuses_changed_text() -> None:
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("answer", "Answer"), GO_VKEY)


def test_open_note_refuses_flipped_signature_bit() -> None:
    blob = bytearray(base64.b64decode(GO_SIGNATURE))
    blob[20] ^= 0x01
    changed = GO_NOTE.replace(GO_SIGNATURE, base64.b64encode(bytes(blob)).decode())
    with pytest.raises(NoteError, match="does not verify"):
        open_note(changed, GO_VKEY)


def test_open_note_refuses_note_signed_under_other_name() -> None:
    renamed = GO_NOTE.replace("\u2014 PeterNeumann", "\u2014 PeterNeuman")
    with pytest.raises(NoteError, match="no signature by PeterNeumann"):
        open_note(renamed, GO_VKEY)


def test_open_note_refuses_key_with_other_name() -> None:
    vkey = verifier_key("Someone", go_key().public_key())
    with pytest.raises(NoteError, match="no signature by Someone"):
        open_note(GO_NOTE, vkey)


def test_open_note_refuses_signature_by_other_key() -> None:
    note = sign_note(GO_TEXT, "PeterNeumann", OTHER_KEY)
    with pytest.raises(NoteError, match="no signature"):
        open_note(note, GO_VKEY)


def test_open_note_accepts_extra_signature_by_unknown_key() -> None:
    cosigned = sign_note(GO_TEXT, "witness.example", OTHER_KEY).split("\n\n")[1]
    assert open_note(GO_NOTE + cosigned, GO_VKEY) == GO_TEXT


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,  # no signature block
        GO_NOTE[:-1],  # no final newline
        GO_NOTE.replace("\u2014 ", "- "),  # hyphen instead of em dash
        GO_NOTE.replace(" x08go", "  x08go"),  # double space
        GO_NOTE.replace("x08go/", "x08go!"),  # not base64
        GO_NOTE.replace("problem,", "problem,\r"),  # control character
        GO_NOTE + "\n",  # blank line after the signatures
        GO_NOTE.replace(GO_SIGNATURE, "AAAA"),  # signature too short
    ],
)
def test_open_note_refuses_malformed_note(note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note, GO_VKEY)


def test_open_note_refuses_more_than_a_hundred_signatures() -> None:
    line = sign_note(GO_TEXT, "witness.example", OTHER_KEY).split("\n\n")[1]
    with pytest.raises(NoteError, match="at most 100"):
        open_note(GO_NOTE + line * 100, GO_VKEY)


def test_split_note_lists_every_signature() -> None:
    _, signatures = split_note(GO_NOTE)
    assert [(s.name, s.key_id) for s in signatures] == [("PeterNeumann", 0xC74F20A3)]


def test_sign_note_refuses_text_without_final_newline() -> None:
    with pytest.raises(ValueError, match="newline"):
        sign_note("no newline", "PeterNeumann", go_key())


def test_sign_note_refuses_name_with_plus() -> None:
    with pytest.raises(ValueError, match="key name"):
        sign_note(GO_TEXT, "Peter+Neumann", go_key())


def test_signed_note_round_trips_unicode_text() -> None:
    text = "Қазақстан — Кыргызстан\nO\u2018zbekiston, Тоҷикистон\n"
    note = sign_note(text, "migex/KZ:MIA", OTHER_KEY)
    assert open_note(note, verifier_key("migex/KZ:MIA", OTHER_KEY.public_key())) == text
