"""Keys and envelopes shared by the protocol tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.protocol.keys import SigningKey

# Fixed test keys, so failures reproduce.
ED25519_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
P256_SCALAR = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721


@pytest.fixture
def ed25519_key() -> SigningKey:
    return SigningKey("KZ:MIA#2026-01", Ed25519PrivateKey.from_private_bytes(ED25519_SEED))


@pytest.fixture
def p256_key() -> SigningKey:
    return SigningKey("UZ:MIA#2026-01", ec.derive_private_key(P256_SCALAR, ec.SECP256R1()))
