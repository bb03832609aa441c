"""Ed25519 signatures through libsodium (PyNaCl): the inbound path's largest single cost.

OpenSSL's Ed25519 (through `cryptography`) takes about twice the processor time of
libsodium's for a verification, and a signature is made for every receipt. Keys stay
`cryptography` objects everywhere else (files, JWKs); only their raw bytes come here,
read once per key object. Ed25519 signatures are deterministic (RFC 8032), so a
signature made here is the same bytes `cryptography` would make. libsodium's
verification is the stricter of the two: besides S < L it refuses public keys and R
values of small order and non-canonical encodings, which no honest signer produces.
PyNaCl's calls release the GIL, so a verification does not stall the writer thread.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

SIGNATURE_BYTES = 64
# Secret keys derived so far, by the key object's id (the object is kept with it, so
# its id cannot be reused). A node signs with a handful of keys; past this many
# (keys loaded again and again), the cache starts over.
_MAX_SECRET_KEYS = 64
_secret_keys: dict[int, tuple[Ed25519PrivateKey, bytes]] = {}
_secret_keys_lock = threading.Lock()


class InvalidEd25519Signature(Exception):
    """The signature does not verify with the key."""


def _secret_key(key: Ed25519PrivateKey) -> bytes:
    """libsodium's 64-byte secret key (seed and public key) of `key`, derived once."""
    known = _secret_keys.get(id(key))
    if known is not None and known[0] is key:
        return known[1]
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret = crypto_sign_seed_keypair(seed)[1]
    with _secret_keys_lock:
        if len(_secret_keys) >= _MAX_SECRET_KEYS:
            _secret_keys.clear()
        _secret_keys[id(key)] = (key, secret)
    return secret


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Raise `InvalidEd25519Signature` unless `signature` is `key`'s over `message`."""
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidEd25519Signature
    try:
        # PyNaCl has only the combined form: signature and message in one buffer.
        crypto_sign_open(signature + message, key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    except BadSignatureError:
        raise InvalidEd25519Signature from None


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """`key`'s signature over `message` (the same bytes as `key.sign(message)`)."""
    return crypto_sign(message, _secret_key(key))[:SIGNATURE_BYTES]
