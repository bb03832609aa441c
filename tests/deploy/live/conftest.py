"""One compose federation for the whole live module: built and started once, removed at the end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.deploy.live.stack import Stack, docker_unavailable


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(f"live deployment suite needs Docker with Compose v2: {reason}")
    created = Stack.create(tmp_path_factory.mktemp("compose"), secrets.token_hex(4))
    try:
        yield created
    finally:
        created.remove()
